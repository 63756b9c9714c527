//! `sockmap serve`: the fork server of the bundled experiment. Binds and
//! listens, forks `workers - 1` children that accept on the inherited fd
//! (or, with `--reuseport`, each opens its own socket), prints one ready
//! line once every worker listens, and on SIGINT/SIGTERM stops the
//! children, reaps them and prints the accept distribution.
//!
//! Process rules: no thread ever exists in this process (so `fork()` is
//! safe and a child may do anything); no worker outlives the parent
//! (`PR_SET_PDEATHSIG` in children, `workers::Workers` kills and reaps on every
//! parent exit path); a child never returns into the parent's stack, it
//! always ends in `_exit`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use super::message::{DoneEvent, ReadyEvent, ServeMode, ServeReady, ServeReport, WorkerCount};
use super::workers::{fork_worker, ChildPlan, Workers};
use super::{signals, worker, ServeConfig};
use crate::error::{Error, Result};

/// Run the server until SIGINT/SIGTERM.
pub fn run(cfg: &ServeConfig, out: &mut dyn Write) -> Result<()> {
    signals::install().map_err(|e| Error::os("cannot install signal handlers", e))?;
    let requested = SocketAddr::new(cfg.addr, cfg.port);
    let listener = worker::listen_on(requested, cfg.backlog, cfg.reuseport)
        .map_err(|e| bind_error(requested, e))?;
    let port = worker::local_port(listener.as_fd())
        .map_err(|e| Error::os(format!("cannot read the bound port of {requested}"), e))?;
    let bound = SocketAddr::new(cfg.addr, port);

    // Children report on one shared pipe with 16-byte messages (atomic,
    // < PIPE_BUF). One pipe, not one per child, so 1024 workers cost the
    // parent one fd.
    let (rx, tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::os("cannot create a pipe", e.into()))?;
    rustix::io::ioctl_fionbio(&rx, true)
        .map_err(|e| Error::os("cannot make the pipe non-blocking", e.into()))?;

    let mut workers = Workers::new(rx);
    let child_plan = ChildPlan {
        bound,
        backlog: cfg.backlog,
        reuseport: cfg.reuseport,
        stall: cfg.stall,
        parent_listener: listener.as_raw_fd(),
        tx: tx.as_raw_fd(),
    };
    for _ in 1..cfg.workers {
        if signals::stop_requested() {
            break;
        }
        let pid = fork_worker(&child_plan).map_err(|e| Error::os("cannot fork a worker", e))?;
        workers.add(pid);
    }
    // Only children write; with our copy closed the pipe reads EOF once
    // every child is gone.
    drop(tx);

    workers.wait_ready(bound)?;
    if !signals::stop_requested() {
        let ready = ServeReady {
            event: ReadyEvent::Ready,
            addr: cfg.addr.to_string(),
            port,
            mode: if cfg.reuseport {
                ServeMode::Reuseport
            } else {
                ServeMode::Shared
            },
            backlog: cfg.backlog,
            stall: cfg.stall,
            pids: workers.all_pids(),
        };
        write_ready(out, &ready, bound, cfg.json).map_err(stdout_err)?;
        signals::start_tick().map_err(|e| Error::os("cannot start the interval timer", e))?;
        let outcome = worker::serve_loop(listener.as_fd(), cfg.stall, &mut || workers.poll());
        if let Some(e) = outcome.error {
            return Err(Error::os(format!("accept on {bound} failed"), e));
        }
        workers.set_parent_count(outcome.accepted);
    }
    drop(listener);
    workers.stop_all();
    let rows: Vec<WorkerCount> = workers
        .counts()
        .into_iter()
        .map(|(pid, accepted)| WorkerCount { pid, accepted })
        .collect();
    write_distribution(out, &rows, cfg.json).map_err(stdout_err)
}

/// An address or port the user chose that cannot be had (in use, not an
/// address of this host, a privileged port) is bad input, exit 2, with the
/// errno; any other failure is the OS refusing, exit 3.
fn bind_error(requested: SocketAddr, e: io::Error) -> Error {
    let input = matches!(
        e.raw_os_error(),
        Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL | libc::EACCES | libc::EAFNOSUPPORT)
    );
    if input {
        Error::Usage(format!("cannot bind {requested}: {e}"))
    } else {
        Error::os(format!("cannot bind {requested}"), e)
    }
}

fn stdout_err(source: io::Error) -> Error {
    Error::Write {
        what: "stdout",
        source,
    }
}

// ---- the ready line and the distribution ----------------------------------
// (their JSON form is `message::ServeReady` and `message::ServeReport`)

fn write_ready(
    out: &mut dyn Write,
    r: &ServeReady,
    bound: SocketAddr,
    json: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r)?;
        writeln!(out)?;
    } else {
        let mode = match r.mode {
            ServeMode::Reuseport => "SO_REUSEPORT, one socket per worker",
            ServeMode::Shared => "shared socket",
        };
        let n = r.pids.len();
        let plural = if n == 1 { "" } else { "s" };
        let stalled = if r.stall { ", stalled" } else { "" };
        let pids: Vec<String> = r.pids.iter().map(u32::to_string).collect();
        writeln!(
            out,
            "sockmap serve: listening on {bound} ({mode}, backlog {}, {n} worker{plural}{stalled}) pids {}",
            r.backlog,
            pids.join(" ")
        )?;
    }
    out.flush()
}

fn write_distribution(out: &mut dyn Write, rows: &[WorkerCount], json: bool) -> io::Result<()> {
    let total: u64 = rows.iter().filter_map(|w| w.accepted).sum();
    if json {
        let done = ServeReport {
            event: DoneEvent::Done,
            total,
            workers: rows.to_vec(),
        };
        serde_json::to_writer(&mut *out, &done)?;
        writeln!(out)?;
    } else {
        for w in rows {
            match w.accepted {
                Some(n) => {
                    let pct = if total == 0 {
                        0.0
                    } else {
                        100.0 * n as f64 / total as f64
                    };
                    writeln!(out, "pid {} accepted {n} ({pct:.1}%)", w.pid)?;
                }
                None => writeln!(out, "pid {} accepted ? (the worker died)", w.pid)?,
            }
        }
        writeln!(out, "total {total} accepted")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rows: &[WorkerCount], json: bool) -> String {
        let mut out = Vec::new();
        write_distribution(&mut out, rows, json).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn distribution_text_and_json() {
        let rows = [
            WorkerCount {
                pid: 4238,
                accepted: Some(469),
            },
            WorkerCount {
                pid: 4239,
                accepted: Some(531),
            },
            WorkerCount {
                pid: 4240,
                accepted: None,
            },
        ];
        assert_eq!(
            text(&rows, false),
            "pid 4238 accepted 469 (46.9%)\npid 4239 accepted 531 (53.1%)\n\
             pid 4240 accepted ? (the worker died)\ntotal 1000 accepted\n"
        );
        assert_eq!(
            text(&rows, true),
            "{\"event\":\"done\",\"total\":1000,\"workers\":[{\"pid\":4238,\"accepted\":469},\
             {\"pid\":4239,\"accepted\":531},{\"pid\":4240,\"accepted\":null}]}\n"
        );
        let none = [WorkerCount {
            pid: 1,
            accepted: Some(0),
        }];
        assert_eq!(
            text(&none, false),
            "pid 1 accepted 0 (0.0%)\ntotal 0 accepted\n"
        );
    }

    #[test]
    fn ready_line_text_and_json() {
        let r = ServeReady {
            event: ReadyEvent::Ready,
            addr: "::1".into(),
            port: 43567,
            mode: ServeMode::Reuseport,
            backlog: 1000,
            stall: true,
            pids: vec![1234, 1235],
        };
        let bound: SocketAddr = "[::1]:43567".parse().unwrap();
        let mut out = Vec::new();
        write_ready(&mut out, &r, bound, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sockmap serve: listening on [::1]:43567 (SO_REUSEPORT, one socket per worker, \
             backlog 1000, 2 workers, stalled) pids 1234 1235\n"
        );
        let mut out = Vec::new();
        write_ready(&mut out, &r, bound, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"event\":\"ready\",\"addr\":\"::1\",\"port\":43567,\"mode\":\"reuseport\",\
             \"backlog\":1000,\"stall\":true,\"pids\":[1234,1235]}\n"
        );
    }
}
