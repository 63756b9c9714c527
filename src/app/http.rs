//! A minimal HTTP/1.1 server for `export`: one request per connection
//! (`Connection: close`), requests parsed by `httparse`, a fixed pool of
//! worker threads, and bounds on everything a client controls — request
//! size, time to send it, time to read the answer, connections waiting.
//! Owns sockets and bytes only; what to answer is the handler's business.
//!
//! Why not a server crate: `tiny_http` (the small sync one) queues
//! pipelined requests per connection and writes them in order, with no
//! timeouts, so one client that pipelines requests and never reads held
//! every worker: measured here, a normal scrape waited 30 s (curl gave
//! up) while such a client was connected. It also spawns a thread per
//! connection and reads header lines without a length limit. The async
//! servers bring a runtime an exporter answering one request every 15 s
//! does not need.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Headers plus request line; a scraper sends a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
/// Kernel send buffer per connection (the kernel doubles it): bounds the
/// memory a client that never reads can pin, instead of autotuning up to
/// net.ipv4.tcp_wmem's maximum (4 MiB by default).
const SNDBUF: usize = 256 * 1024;
/// Accepted connections waiting for a worker before new ones get 503.
const QUEUE: usize = 64;
const POLL_MS: u16 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub accept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// For 405: the methods allowed.
    pub allow: Option<&'static str>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow: None,
        }
    }
}

pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// Serve on `listener` until `stop()` is true. `timeout` bounds the time a
/// client may take to send its request and, separately, to read the
/// response. Returns when the workers have finished.
pub fn serve(
    listener: &TcpListener,
    workers: usize,
    timeout: Duration,
    handler: Arc<Handler>,
    stop: fn() -> bool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (tx, rx) = sync_channel::<TcpStream>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let pool: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let rx = Arc::clone(&rx);
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || worker(&rx, timeout, &*handler))
        })
        .collect();
    let fd = listener.as_fd();
    while !stop() {
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let wait = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(POLL_MS) * 1_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match listener.accept() {
            Ok((stream, _)) => match tx.try_send(stream) {
                Ok(()) => {}
                // Nothing was read from it yet: the short answer fits in
                // the empty send buffer and cannot block.
                Err(TrySendError::Full(stream)) => {
                    let busy = Response::text(503, "busy: too many connections waiting\n");
                    let _ = answer(&stream, &busy, false, timeout);
                }
                Err(TrySendError::Disconnected(_)) => break,
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            // Out of fds (EMFILE/ENFILE) or a connection reset before we
            // took it: the backlog keeps the rest; try again shortly.
            Err(_) => std::thread::sleep(Duration::from_millis(u64::from(POLL_MS) / 4)),
        }
    }
    drop(tx);
    for w in pool {
        let _ = w.join();
    }
    Ok(())
}

fn worker(rx: &Mutex<Receiver<TcpStream>>, timeout: Duration, handler: &Handler) {
    loop {
        // Hold the lock only to take one connection.
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(stream) = next else { return };
        let _ = stream.set_nonblocking(false);
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, SNDBUF);
        // A client that left or misbehaved costs its own connection only.
        // Given up on (timeout, reset): close with a reset, so the kernel
        // drops what is still queued for it instead of retrying it for
        // minutes against a zero window.
        if connection(&stream, timeout, handler).is_err() {
            let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
        }
    }
}

fn connection(stream: &TcpStream, timeout: Duration, handler: &Handler) -> std::io::Result<()> {
    let (rq, head) = match read_request(stream, timeout) {
        Ok(rq) => rq,
        Err(status) => {
            let msg = match status {
                408 => "timed out reading the request\n",
                431 => "request too large\n",
                _ => "bad request\n",
            };
            return answer(stream, &Response::text(status, msg), false, timeout);
        }
    };
    let resp = handler(&rq);
    answer(stream, &resp, head, timeout)
}

/// Read and parse one request, within `timeout` overall. Err: the status to
/// answer with.
fn read_request(mut stream: &TcpStream, timeout: Duration) -> Result<(Request, bool), u16> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(408);
        }
        stream.set_read_timeout(Some(left)).map_err(|_| 500u16)?;
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) => return Err(400),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(408)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(400),
        };
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("").to_string();
                let target = req.path.unwrap_or("");
                let path = target.split('?').next().unwrap_or("").to_string();
                let accept = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("accept"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                let head = method == "HEAD";
                return Ok((
                    Request {
                        method,
                        path,
                        accept,
                    },
                    head,
                ));
            }
            Ok(httparse::Status::Partial) if len == buf.len() => return Err(431),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(431),
            Err(_) => return Err(400),
        }
    }
}

/// Write the response (headers only for HEAD) within `timeout` overall,
/// then close our side.
fn answer(
    mut stream: &TcpStream,
    resp: &Response,
    head: bool,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    if let Some(allow) = resp.allow {
        out.extend_from_slice(format!("Allow: {allow}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head {
        out.extend_from_slice(&resp.body);
    }
    let deadline = Instant::now() + timeout;
    let mut sent = 0;
    while sent < out.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(&out[sent..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.shutdown(Shutdown::Write)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
