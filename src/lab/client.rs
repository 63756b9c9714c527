//! One I/O thread of `sockmap load`: many non-blocking clients driven by
//! one edge-triggered epoll. Each client connects, then per its mode:
//! echo sends `size` bytes of its pattern per round while reading the echo
//! back (interleaved: a client that wrote everything first would deadlock
//! once the socket buffers fill) and verifies every byte; hold sends
//! nothing and keeps the connection open for the hold time; http sends
//! one `GET /` per round and reads one response. After the last round it
//! closes. Owns the per-connection state machine and timeouts; prints
//! nothing.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

use super::message::{FailKind, FAIL_KINDS};
use super::pattern::{Pattern, MAX_SLICE};
use super::{http, LoadMode};

mod modes;
use modes::{drive_hold, drive_http, next_request};

/// What every client of a run does.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub addr: SocketAddr,
    pub rounds: u32,
    pub size: u64,
    pub timeout: Duration,
    pub mode: LoadMode,
    /// The Host header of `http` mode (the address connected to).
    pub host: String,
}

/// The kind of failure an errno from send/recv means.
fn fail_kind_of(e: Errno) -> FailKind {
    match e {
        Errno::CONNRESET | Errno::PIPE | Errno::CONNABORTED => FailKind::Reset,
        Errno::TIMEDOUT => FailKind::Timeout,
        _ => FailKind::Other,
    }
}

/// One thread's results, merged by `load`.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub connect_ms: Vec<f64>,
    pub round_trip_ms: Vec<f64>,
    /// Bytes echoed back and verified (echo), or received (hold, http).
    pub bytes: u64,
    pub bytes_sent: u64,
    /// Count per kind, indexed like [`FailKind::ALL`].
    pub failures: [u64; FAIL_KINDS],
    /// The first failure message of each kind (for the report).
    pub first_error: [Option<String>; FAIL_KINDS],
}

impl Stats {
    fn fail(&mut self, kind: FailKind, msg: String) {
        let i = kind as usize;
        self.failures[i] += 1;
        if self.first_error[i].is_none() {
            self.first_error[i] = Some(msg);
        }
    }
}

struct Client {
    id: u64,
    /// None once the client finished or failed.
    fd: Option<OwnedFd>,
    connected: bool,
    round: u32,
    offset: usize,
    sent: u64,
    recvd: u64,
    /// When connect() or the current round started.
    started: Instant,
    last_progress: Instant,
    /// `hold`: when to close.
    hold_until: Option<Instant>,
    /// `http`: this round's request and the response being read.
    request: Vec<u8>,
    response: Option<http::Response>,
}

/// What a mode's `drive_*` concluded.
enum Step {
    /// Waiting for the socket (the next epoll edge).
    Blocked,
    /// All rounds done.
    Finished,
    Failed(FailKind, String),
    /// `http`: the server closed after a response and rounds remain: the
    /// next round goes on a new connection.
    Reconnect,
}

/// Run the clients `ids` to completion (success or failure) and return
/// this thread's stats. `progress` is advanced one step per round.
pub(super) fn run_thread(
    plan: &Plan,
    ids: &[u64],
    pattern: &Pattern,
    progress: Option<&ProgressBar>,
) -> Stats {
    let mut stats = Stats::default();
    let ep = match epoll::create(epoll::CreateFlags::CLOEXEC) {
        Ok(ep) => ep,
        Err(e) => {
            for &id in ids {
                stats.fail(FailKind::Other, format!("client {id}: epoll_create: {e}"));
            }
            advance(progress, ids.len() as u64 * u64::from(plan.rounds));
            return stats;
        }
    };
    let mut clients = Vec::with_capacity(ids.len());
    let mut live = 0usize;
    // Open every connection first: the load arrives all at once.
    for (i, &id) in ids.iter().enumerate() {
        let now = Instant::now();
        let mut c = Client {
            id,
            fd: None,
            connected: false,
            round: 0,
            offset: Pattern::offset(id, 0),
            sent: 0,
            recvd: 0,
            started: now,
            last_progress: now,
            hold_until: None,
            request: Vec::new(),
            response: None,
        };
        match open(plan.addr, &ep, i as u64) {
            Ok((fd, connected)) => {
                c.fd = Some(fd);
                if connected {
                    established(&mut c, plan, &mut stats);
                }
                live += 1;
            }
            Err(e) => {
                stats.fail(FailKind::Connect, format!("client {id}: connect: {e}"));
                advance(progress, u64::from(plan.rounds));
            }
        }
        clients.push(c);
    }

    let mut buf = vec![0u8; MAX_SLICE];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(1024);
    let scan_every =
        (plan.timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut next_scan = Instant::now() + scan_every;
    while live > 0 {
        let wait = next_scan.saturating_duration_since(Instant::now());
        let ts = rustix::event::Timespec::try_from(wait).ok();
        events.clear();
        match epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            ts.as_ref(),
        ) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                // Cannot wait any more: fail whoever is left.
                for c in clients.iter_mut().filter(|c| c.fd.is_some()) {
                    let msg = format!("client {}: epoll_wait: {e}", c.id);
                    finish(
                        c,
                        Step::Failed(FailKind::Other, msg),
                        plan,
                        &mut stats,
                        progress,
                    );
                }
                break;
            }
        }
        // Handshakes first, so a connect latency is not inflated by the
        // data this thread pushes for other clients in the same batch.
        for ev in &events {
            let Some(c) = clients.get_mut(ev.data.u64() as usize) else {
                continue;
            };
            let Some(fd) = c.fd.as_ref().filter(|_| !c.connected) else {
                continue;
            };
            match check_connect(fd, c.id) {
                Ok(()) => established(c, plan, &mut stats),
                Err(step) => {
                    finish(c, step, plan, &mut stats, progress);
                    live -= 1;
                }
            }
        }
        for ev in &events {
            let Some(c) = clients.get_mut(ev.data.u64() as usize) else {
                continue;
            };
            if c.fd.is_none() || !c.connected {
                continue;
            }
            // Each mode moves bytes until the socket would block in every
            // direction it needs.
            let mut step = match plan.mode {
                LoadMode::Echo => drive_echo(c, plan, pattern, &mut buf, &mut stats, progress),
                LoadMode::Hold(_) => drive_hold(c, plan, &mut buf, &mut stats),
                LoadMode::Http => drive_http(c, plan, &mut buf, &mut stats, progress),
            };
            if let Step::Reconnect = step {
                step = reopen(c, plan, &ep, ev.data.u64(), &mut stats);
            }
            if !matches!(step, Step::Blocked) {
                finish(c, step, plan, &mut stats, progress);
                live -= 1;
            }
        }
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + scan_every;
            for c in clients.iter_mut().filter(|c| c.fd.is_some()) {
                // A held connection makes no progress on purpose: it ends
                // when its hold is over.
                if let Some(until) = c.hold_until {
                    if now >= until {
                        advance(progress, u64::from(plan.rounds));
                        finish(c, Step::Finished, plan, &mut stats, progress);
                        live -= 1;
                    }
                    continue;
                }
                if now.duration_since(c.last_progress) >= plan.timeout {
                    let msg = format!(
                        "client {}: no progress for {:?} ({})",
                        c.id,
                        plan.timeout,
                        where_(c, plan)
                    );
                    finish(
                        c,
                        Step::Failed(FailKind::Timeout, msg),
                        plan,
                        &mut stats,
                        progress,
                    );
                    live -= 1;
                }
            }
        }
    }
    stats
}

fn advance(progress: Option<&ProgressBar>, n: u64) {
    if let Some(p) = progress {
        p.inc(n);
    }
}

/// A non-blocking socket, connect() started, registered with the epoll.
/// Returns whether the connection is already established.
fn open(addr: SocketAddr, ep: &OwnedFd, key: u64) -> Result<(OwnedFd, bool), Errno> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    // Request/response traffic: send each round's tail at once rather
    // than wait for an ACK (Nagle), as the serve side does too.
    rustix::net::sockopt::set_tcp_nodelay(&fd, true)?;
    let connected = match rustix::net::connect(&fd, &addr) {
        Ok(()) => true,
        Err(Errno::INPROGRESS) => false,
        Err(e) => return Err(e),
    };
    // Edge-triggered: each `drive_*` goes on until EAGAIN, so an edge is
    // never lost, and a full send buffer does not spin the loop.
    epoll::add(
        ep,
        &fd,
        epoll::EventData::new_u64(key),
        epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET,
    )?;
    Ok((fd, connected))
}

/// Close the client's connection and start a new one for its next round.
fn reopen(c: &mut Client, plan: &Plan, ep: &OwnedFd, key: u64, stats: &mut Stats) -> Step {
    c.fd = None;
    c.connected = false;
    c.started = Instant::now();
    c.last_progress = c.started;
    match open(plan.addr, ep, key) {
        Ok((fd, connected)) => {
            c.fd = Some(fd);
            if connected {
                established(c, plan, stats);
            }
            Step::Blocked
        }
        Err(e) => Step::Failed(
            FailKind::Connect,
            format!("client {}: reconnect for round {}: {e}", c.id, c.round + 1),
        ),
    }
}

/// After an epoll event on a connecting socket: did the handshake work?
fn check_connect(fd: &OwnedFd, id: u64) -> Result<(), Step> {
    match rustix::net::sockopt::socket_error(fd) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) | Err(e) => Err(Step::Failed(
            FailKind::Connect,
            format!("client {id}: connect: {}", std::io::Error::from(e)),
        )),
    }
}

fn established(c: &mut Client, plan: &Plan, stats: &mut Stats) {
    let now = Instant::now();
    stats
        .connect_ms
        .push(now.duration_since(c.started).as_secs_f64() * 1e3);
    c.connected = true;
    c.started = now;
    c.last_progress = now;
    match plan.mode {
        LoadMode::Echo => {}
        LoadMode::Hold(d) => c.hold_until = Some(now + d),
        LoadMode::Http => next_request(c, plan),
    }
}

/// `echo`: send this round's bytes and verify the echo, interleaved.
fn drive_echo(
    c: &mut Client,
    plan: &Plan,
    pattern: &Pattern,
    buf: &mut [u8],
    stats: &mut Stats,
    progress: Option<&ProgressBar>,
) -> Step {
    let Some(fd) = c.fd.as_ref() else {
        return Step::Blocked;
    };
    loop {
        let mut moved = false;
        if c.sent < plan.size {
            let want = (plan.size - c.sent).min(MAX_SLICE as u64) as usize;
            let data = pattern.slice(c.offset, c.sent, want);
            match send_now(fd, data, &mut c.sent, stats) {
                Ok(went) => moved = went,
                Err(e) => return io_failure(c, plan, e, "send"),
            }
        }
        if c.recvd < c.sent {
            let want = ((c.sent - c.recvd) as usize).min(buf.len());
            match rustix::io::read(fd, &mut buf[..want]) {
                Ok(0) => return closed_early(c, plan),
                Ok(n) => {
                    if let Some((i, want)) = pattern.check(c.offset, c.recvd, &buf[..n]) {
                        return Step::Failed(
                            FailKind::Mismatch,
                            format!(
                                "client {}: round {} byte {} came back as {:#04x}, sent {want:#04x}",
                                c.id,
                                c.round + 1,
                                c.recvd + i as u64,
                                buf[i]
                            ),
                        );
                    }
                    c.recvd += n as u64;
                    stats.bytes += n as u64;
                    moved = true;
                    if c.recvd == plan.size {
                        let now = Instant::now();
                        stats
                            .round_trip_ms
                            .push(now.duration_since(c.started).as_secs_f64() * 1e3);
                        advance(progress, 1);
                        c.round += 1;
                        if c.round == plan.rounds {
                            return Step::Finished;
                        }
                        c.offset = Pattern::offset(c.id, c.round);
                        c.sent = 0;
                        c.recvd = 0;
                        c.started = now;
                    }
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(e) => return io_failure(c, plan, e, "recv"),
            }
        }
        if moved {
            c.last_progress = Instant::now();
        } else {
            return Step::Blocked;
        }
    }
}

fn io_failure(c: &Client, plan: &Plan, e: Errno, op: &str) -> Step {
    Step::Failed(
        fail_kind_of(e),
        format!(
            "client {}: {op}: {} ({})",
            c.id,
            std::io::Error::from(e),
            where_(c, plan)
        ),
    )
}

/// Send as much of `data` as the socket takes now, counted in `sent` and
/// the stats; whether any byte went. Would-block is not an error.
fn send_now(fd: &OwnedFd, data: &[u8], sent: &mut u64, stats: &mut Stats) -> Result<bool, Errno> {
    // NOSIGNAL: a reset connection is a counted failure, not SIGPIPE.
    match rustix::net::send(fd, data, SendFlags::NOSIGNAL) {
        Ok(n) => {
            *sent += n as u64;
            stats.bytes_sent += n as u64;
            Ok(n > 0)
        }
        Err(Errno::AGAIN | Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The server closed the connection before the client was done with it.
fn closed_early(c: &Client, plan: &Plan) -> Step {
    Step::Failed(
        FailKind::Eof,
        format!(
            "client {}: the server closed the connection ({})",
            c.id,
            where_(c, plan)
        ),
    )
}

/// "round 2 of 10, sent 65536, received 1024 of 524288 bytes"
fn where_(c: &Client, plan: &Plan) -> String {
    if !c.connected {
        return "while connecting".into();
    }
    match plan.mode {
        LoadMode::Echo => {}
        LoadMode::Hold(d) => {
            return format!(
                "{:.1} s into a {d:?} hold",
                c.started.elapsed().as_secs_f64()
            )
        }
        LoadMode::Http => {
            return format!(
                "round {} of {}, sent {} of {} request bytes, received {} response bytes",
                c.round + 1,
                plan.rounds,
                c.sent,
                c.request.len(),
                c.recvd
            )
        }
    }
    format!(
        "round {} of {}, sent {}, received {} of {} bytes",
        c.round + 1,
        plan.rounds,
        c.sent,
        c.recvd,
        plan.size
    )
}

/// Close the client and account for how it ended.
fn finish(
    c: &mut Client,
    step: Step,
    plan: &Plan,
    stats: &mut Stats,
    progress: Option<&ProgressBar>,
) {
    c.fd = None;
    if let Step::Failed(kind, msg) = step {
        stats.fail(kind, msg);
        // The rounds it will never do, so the bar still ends full.
        advance(progress, u64::from(plan.rounds - c.round));
    }
}
