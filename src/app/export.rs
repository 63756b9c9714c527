//! `sockmap export`: an HTTP server for Prometheus. `GET /metrics` runs
//! one collection (netlink every scrape, holders from the shared rescan
//! policy) and answers in the format the `Accept` header asks for;
//! `GET /` points there; other paths get 404, other methods 405. Owns the
//! serving only: the encoding is `render::openmetrics`, the policy
//! `sampler`. Loopback by default, since the metrics name processes.
//!
//! Serving is `http` (bounded threads, timeouts, one request per
//! connection). Collection is serialized by one lock: a scrape waits at
//! most for the ones ahead of it; writing answers is not serialized.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::http::{self, Request, Response};
use super::sampler::{Policy, Sampler};
use super::{interrupt, stdout_err, ExportConfig};
use crate::analyze;
use crate::collect::host;
use crate::error::{exit, Error, Result};
use crate::model::netns::NetnsScope;
use crate::render::openmetrics::{self, Exposition, Format, HostCounters};
use crate::target::Query;

/// Threads answering requests (collection itself is one at a time).
const WORKERS: usize = 4;

pub fn run(cfg: &ExportConfig, out: &mut impl Write) -> Result<i32> {
    interrupt::install()?;
    let listener = TcpListener::bind(cfg.listen)
        .map_err(|e| Error::os(format!("cannot listen on {}", cfg.listen), e))?;
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    let scraper = Arc::new(Mutex::new(Scraper::new(&cfg.query)));
    // The first pass scans all of /proc; do it before announcing, so the
    // first scrape is as cheap as the rest, and a kernel that cannot
    // answer stops the exporter here.
    lock(&scraper).prime()?;
    writeln!(out, "sockmap export: serving http://{addr}/metrics").map_err(stdout_err)?;
    out.flush().map_err(stdout_err)?;
    let handler = move |rq: &Request| route(rq, &scraper);
    http::serve(
        &listener,
        WORKERS,
        cfg.timeout,
        Arc::new(handler),
        interrupt::requested,
    )
    .map_err(|e| Error::os(format!("serving on {addr} failed"), e))?;
    Ok(exit::OK)
}

fn route(rq: &Request, scraper: &Mutex<Scraper>) -> Response {
    if !matches!(rq.path.as_str(), "/" | "/metrics") {
        return Response::text(404, "not found: metrics are at /metrics\n");
    }
    if !matches!(rq.method.as_str(), "GET" | "HEAD") {
        return Response {
            allow: Some("GET, HEAD"),
            ..Response::text(405, "method not allowed: use GET\n")
        };
    }
    if rq.path == "/" {
        return Response::text(200, "sockmap exporter: Prometheus metrics at /metrics\n");
    }
    let format = Format::negotiate(rq.accept.as_deref());
    Response {
        status: 200,
        content_type: format.content_type(),
        body: lock(scraper).scrape(format),
        allow: None,
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
            None => {
                self.sampler
                    .insert(Sampler::new(&self.query, Policy::Export, NetnsScope::All)?)
            }
        };
        let proc_root = sampler.proc_root();
        let report = analyze::report(&self.query, sampler.sample()?);
        // A counter file that cannot be read leaves its series out.
        let mut counters = vec![HostCounters {
            netns: None,
            counters: host::read_counters(&proc_root).unwrap_or_default(),
            udp: host::read_udp_counters(&proc_root).unwrap_or_default(),
        }];
        // Every other namespace looked into: its own TcpExt counters, read
        // from inside it (its UDP counters are not kept: left out).
        for ns in report.namespaces.iter().skip(1) {
            if let Some(c) = sampler.counters(ns.inode) {
                counters.push(HostCounters {
                    netns: Some(ns.inode.to_string()),
                    counters: c,
                    udp: Default::default(),
                });
            }
        }
        Ok((report, counters))
    }
}
