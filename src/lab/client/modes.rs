//! The `hold` and `http` modes of a load client: what happens on the
//! connection once it is established (the echo mode is in the parent).

use std::time::Instant;

use indicatif::ProgressBar;
use rustix::io::Errno;

use super::{
    advance, closed_early, io_failure, send_now, where_, Client, FailKind, Plan, Stats, Step,
};
use crate::lab::http;

/// `hold`: read and drop whatever the server sends (a banner, say); its
/// closing the connection before the hold is over is a failure.
pub(super) fn drive_hold(c: &mut Client, plan: &Plan, buf: &mut [u8], stats: &mut Stats) -> Step {
    let Some(fd) = c.fd.as_ref() else {
        return Step::Blocked;
    };
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => return closed_early(c, plan),
            Ok(n) => {
                c.recvd += n as u64;
                stats.bytes += n as u64;
            }
            Err(Errno::AGAIN | Errno::INTR) => return Step::Blocked,
            Err(e) => return io_failure(c, plan, e, "recv"),
        }
    }
}

/// `http`: this round's request (keep-alive but for the last round) and a
/// fresh response reader.
pub(super) fn next_request(c: &mut Client, plan: &Plan) {
    c.request = http::request(&plan.host, c.round + 1 < plan.rounds);
    c.response = Some(http::Response::new());
    c.sent = 0;
    c.recvd = 0;
}

/// `http`: send the request, read the response; one round per response.
pub(super) fn drive_http(
    c: &mut Client,
    plan: &Plan,
    buf: &mut [u8],
    stats: &mut Stats,
    progress: Option<&ProgressBar>,
) -> Step {
    loop {
        let Some(fd) = c.fd.as_ref() else {
            return Step::Blocked;
        };
        let mut moved = false;
        if let Some(rest) = c.request.get(c.sent as usize..).filter(|r| !r.is_empty()) {
            match send_now(fd, rest, &mut c.sent, stats) {
                Ok(went) => moved = went,
                Err(e) => return io_failure(c, plan, e, "send"),
            }
        }
        let Some(resp) = c.response.as_mut() else {
            return Step::Blocked;
        };
        let got = match rustix::io::read(fd, &mut *buf) {
            Ok(0) => match resp.eof() {
                Ok(done) => Some((done, true)),
                Err(why) => {
                    let msg = format!("client {}: {why} ({})", c.id, where_(c, plan));
                    return Step::Failed(FailKind::Eof, msg);
                }
            },
            Ok(n) => {
                c.recvd += n as u64;
                stats.bytes += n as u64;
                moved = true;
                match resp.feed(&buf[..n]) {
                    Ok(done) => done.map(|d| (d, false)),
                    Err(why) => {
                        let msg = format!("client {}: {why} ({})", c.id, where_(c, plan));
                        return Step::Failed(FailKind::Protocol, msg);
                    }
                }
            }
            Err(Errno::AGAIN | Errno::INTR) => None,
            Err(e) => return io_failure(c, plan, e, "recv"),
        };
        if let Some((done, closed)) = got {
            if let Some(end) = response_done(c, plan, &done, closed, stats, progress) {
                return end;
            }
            moved = true;
        }
        if moved {
            c.last_progress = Instant::now();
        } else {
            return Step::Blocked;
        }
    }
}

/// A whole response arrived: count the round; end the client (done, or
/// failed), or set up the next request on this connection or a new one.
fn response_done(
    c: &mut Client,
    plan: &Plan,
    done: &http::Done,
    closed: bool,
    stats: &mut Stats,
    progress: Option<&ProgressBar>,
) -> Option<Step> {
    let now = Instant::now();
    stats
        .round_trip_ms
        .push(now.duration_since(c.started).as_secs_f64() * 1e3);
    let round = c.round + 1;
    if done.extra > 0 {
        return Some(Step::Failed(
            FailKind::Protocol,
            format!(
                "client {}: round {round}: {} bytes after the response",
                c.id, done.extra
            ),
        ));
    }
    if !(200..400).contains(&done.status) {
        return Some(Step::Failed(
            FailKind::Status,
            format!("client {}: round {round}: {}", c.id, done.status_line),
        ));
    }
    advance(progress, 1);
    c.round = round;
    if c.round == plan.rounds {
        return Some(Step::Finished);
    }
    if closed || done.closes {
        // No keep-alive (HTTP/1.0, `Connection: close`): a new connection.
        return Some(Step::Reconnect);
    }
    c.started = now;
    next_request(c, plan);
    None
}
