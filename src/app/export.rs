//! `sockmap export`: an HTTP server for Prometheus. `GET /metrics` runs
//! one collection (netlink every scrape, holders from the shared rescan
//! policy) and answers in the format the `Accept` header asks for;
//! `GET /` points there; other paths get 404, other methods 405. Owns the
//! serving only: the encoding is `render::openmetrics`, the policy
//! `sampler`. Loopback by default, since the metrics name processes.
//!
//! Robustness: `tiny_http` gives each connection a thread and no
//! timeouts, so the listening socket carries SO_RCVTIMEO/SO_SNDTIMEO,
//! which Linux copies into every accepted socket: a client that sends
//! nothing or never reads is cut off after `timeout` per read or write.
//! Scrapes are answered by a few worker threads; collection is
//! serialized by one lock (a scrape waits at most for the ones ahead of
//! it), writing is not. If the crate's accept thread stops on an error
//! (EMFILE), the server is rebuilt on the same listening socket.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server};

use super::sampler::Sampler;
use super::{interrupt, stdout_err, ExportConfig};
use crate::analyze;
use crate::collect::host;
use crate::error::{exit, Error, Result};
use crate::render::openmetrics::{self, Exposition, Format, HostCounters};
use crate::target::Query;

/// Threads answering requests (collection itself is one at a time).
const WORKERS: usize = 4;
/// Requests waiting for a worker before new ones get 503.
const QUEUE: usize = 64;
const POLL: Duration = Duration::from_millis(200);

pub fn run(cfg: &ExportConfig, out: &mut impl Write) -> Result<i32> {
    interrupt::install();
    raise_nofile_limit();
    let listener = listen(cfg.listen, cfg.timeout)?;
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    let scraper = Arc::new(Mutex::new(Scraper::new(&cfg.query)));
    // The first pass scans all of /proc; do it before announcing, so the
    // first scrape is as cheap as the rest.
    lock(&scraper).prime()?;
    writeln!(out, "sockmap export: serving http://{addr}/metrics").map_err(stdout_err)?;
    out.flush().map_err(stdout_err)?;

    let (tx, rx) = sync_channel::<Request>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let scraper = Arc::clone(&scraper);
            std::thread::spawn(move || worker(&rx, &scraper))
        })
        .collect();

    let mut server = serve(&listener)?;
    while !interrupt::requested() {
        match server.recv_timeout(POLL) {
            Ok(Some(rq)) => match tx.try_send(rq) {
                Ok(()) => {}
                Err(TrySendError::Full(rq)) => {
                    let _ = rq.respond(text(503, "busy: too many requests waiting\n"));
                }
                Err(TrySendError::Disconnected(_)) => break,
            },
            Ok(None) => {}
            Err(e) => {
                eprintln!("sockmap export: accepting connections failed ({e}); restarting");
                std::thread::sleep(POLL);
                server = serve(&listener)?;
            }
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    Ok(exit::OK)
}

/// Bind, and give the listening socket the per-connection timeouts.
fn listen(addr: SocketAddr, timeout: Duration) -> Result<TcpListener> {
    let listener =
        TcpListener::bind(addr).map_err(|e| Error::os(format!("cannot listen on {addr}"), e))?;
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    for which in [Timeout::Recv, Timeout::Send] {
        set_socket_timeout(&listener, which, Some(timeout))
            .map_err(|e| Error::os("cannot set the connection timeouts", e.into()))?;
    }
    Ok(listener)
}

fn serve(listener: &TcpListener) -> Result<Server> {
    let l = listener
        .try_clone()
        .map_err(|e| Error::os("cannot duplicate the listening socket", e))?;
    Server::from_listener(l, None)
        .map_err(|e| Error::os("cannot start the HTTP server", std::io::Error::other(e)))
}

fn worker(rx: &Mutex<Receiver<Request>>, scraper: &Mutex<Scraper>) {
    loop {
        // Hold the receiver's lock only to take one request.
        let rq = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(rq) = rq else { return };
        // A client gone mid-response is its own business.
        let _ = handle(rq, scraper);
    }
}

fn handle(rq: Request, scraper: &Mutex<Scraper>) -> std::io::Result<()> {
    let path = rq.url().split('?').next().unwrap_or("");
    let known = matches!(path, "/" | "/metrics");
    let method_ok = matches!(rq.method(), Method::Get | Method::Head);
    if !known {
        return rq.respond(text(404, "not found: metrics are at /metrics\n"));
    }
    if !method_ok {
        let resp = with_header(
            text(405, "method not allowed: use GET\n"),
            "Allow",
            "GET, HEAD",
        );
        return rq.respond(resp);
    }
    if path == "/" {
        return rq.respond(text(
            200,
            "sockmap exporter: Prometheus metrics at /metrics\n",
        ));
    }
    let accept = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_string());
    let format = Format::negotiate(accept.as_deref());
    let body = lock(scraper).scrape(format);
    rq.respond(with_header(
        Response::from_data(body),
        "Content-Type",
        format.content_type(),
    ))
}

fn text(code: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let resp = Response::from_string(body).with_status_code(code);
    with_header(resp, "Content-Type", "text/plain; charset=utf-8")
}

fn with_header<R: std::io::Read>(resp: Response<R>, name: &str, value: &str) -> Response<R> {
    // Only this file's ASCII constants come here, which never fail.
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => resp.with_header(h),
        Err(()) => resp,
    }
}

fn lock(m: &Mutex<Scraper>) -> std::sync::MutexGuard<'_, Scraper> {
    // A worker that panicked mid-scrape leaves a snapshot at worst stale.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What persists between scrapes: the collector with its holder cache,
/// and the error count.
struct Scraper {
    query: Query,
    sampler: Option<Sampler>,
    errors: u64,
}

impl Scraper {
    fn new(query: &Query) -> Self {
        Scraper {
            query: query.clone(),
            sampler: None,
            errors: 0,
        }
    }

    /// The first, full collection; its failure (no sock_diag, say) stops
    /// the exporter before it announces itself.
    fn prime(&mut self) -> Result<()> {
        self.collect().map(|_| ())
    }

    fn scrape(&mut self, format: Format) -> Vec<u8> {
        let start = Instant::now();
        let collected = self.collect();
        let (report, counters) = match collected {
            Ok(rc) => (Some(rc.0), rc.1),
            Err(e) => {
                self.errors += 1;
                self.sampler = None;
                eprintln!("sockmap export: scrape failed: {e}");
                (None, Vec::new())
            }
        };
        openmetrics::encode(
            &Exposition {
                report: report.as_ref(),
                counters,
                scrape_duration: start.elapsed(),
                scrape_errors: self.errors,
            },
            format,
        )
    }

    fn collect(&mut self) -> Result<(crate::model::report::Report, Vec<HostCounters>)> {
        let sampler = match &mut self.sampler {
            Some(s) => s,
            None => self.sampler.insert(Sampler::new(&self.query)?),
        };
        let proc_root = sampler.proc_root();
        let report = analyze::report(&self.query, sampler.sample()?);
        let counters = host::read_counters(&proc_root)
            .map(|counters| {
                vec![HostCounters {
                    netns: None,
                    counters,
                }]
            })
            .unwrap_or_default();
        Ok((report, counters))
    }
}

/// Each connection costs tiny_http two fds: take the hard limit, as a
/// server should, so a burst of clients meets the timeouts before EMFILE.
fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}
