//! `sockmap demo`: the experiment end to end on loopback. Starts the fork
//! server (shared socket), runs a load, inspects while the load runs and
//! prints the proof (pids, fd, the one inode, queue depth/backlog) and the
//! accept distribution; then the same with SO_REUSEPORT for contrast.
//! Every process it starts is in its own process group, killed on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::{interrupt, stdout_err, DemoConfig};
use crate::analyze;
use crate::collect::Collector;
use crate::error::{exit, Error, Result};
use crate::lab::message::{ServeReady, ServeReport};
use crate::lab::{self, LoadConfig};
use crate::model::report::{GroupKind, Report};
use crate::render;
use crate::target::{Query, Target};

const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A `sockmap serve` child in its own process group; killed on drop.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    ready: ServeReady,
}

impl Server {
    fn start(reuseport: bool) -> Result<Server> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::os("cannot find the sockmap executable", e))?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "serve",
            "--addr",
            "127.0.0.1",
            "--port",
            "0",
            "--workers",
            "2",
            "--json",
        ]);
        if reuseport {
            cmd.arg("--reuseport");
        }
        cmd.stdout(Stdio::piped())
            .stdin(Stdio::null())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; the server dies with us even
        // if we are SIGKILLed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::os("cannot start sockmap serve", e))?;
        let Some(out) = child.stdout.take() else {
            return Err(failed("sockmap serve has no stdout"));
        };
        let mut stdout = BufReader::new(out);
        let (tx, rx) = std::sync::mpsc::channel();
        // Read the ready line with a deadline (a thread, since pipes block).
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let got = stdout.read_line(&mut line).is_ok_and(|n| n > 0);
            let _ = tx.send(got.then_some(line));
            stdout
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) => line,
            _ => {
                kill_group(&child);
                let _ = child.wait();
                return Err(failed(
                    "sockmap serve did not become ready (its error, if any, is above)",
                ));
            }
        };
        let stdout = reader
            .join()
            .map_err(|_| failed("the thread reading sockmap serve's ready line panicked"))?;
        let ready: ServeReady = match serde_json::from_str(&line) {
            Ok(ready) => ready,
            Err(e) => {
                kill_group(&child);
                let _ = child.wait();
                return Err(failed(&format!(
                    "unexpected ready line from sockmap serve: {e}: {}",
                    crate::escape::terminal(line.trim_end())
                )));
            }
        };
        Ok(Server {
            child,
            stdout,
            ready,
        })
    }

    /// SIGTERM, then read the distribution it prints.
    fn stop(mut self) -> Option<ServeReport> {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let mut done = None;
        let mut line = String::new();
        while self.stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Ok(report) = serde_json::from_str(&line) {
                done = Some(report);
            }
            line.clear();
        }
        done
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(&self.child);
        let _ = self.child.wait();
    }
}

fn kill_group(child: &Child) {
    // SAFETY: kill(2) on the process group we created for this child.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
}

/// Exit status after Ctrl-C (SIGINT) or SIGTERM: 128 + SIGINT, as shells
/// and other tools report an interrupted command.
pub const INTERRUPTED: i32 = 130;

/// Something the demo needs at run time failed (not bad usage): exit 3,
/// like any other failure of the OS underneath.
fn failed(what: &str) -> Error {
    Error::os(what, std::io::Error::other("demo cannot continue"))
}

pub fn run(cfg: &DemoConfig, out: &mut impl Write) -> Result<i32> {
    interrupt::install()?;
    let mut ok = true;
    writeln!(
        out,
        "The experiment: a server binds and listens, then forks; parent and child both accept()\n\
         on the inherited fd while {} clients connect. Who gets the connections, and why?\n",
        cfg.clients
    )
    .map_err(stdout_err)?;
    ok &= act(cfg, false, out)?;
    if interrupt::requested() {
        return Ok(INTERRUPTED);
    }
    writeln!(
        out,
        "\nThe contrast: with SO_REUSEPORT each worker opens its own socket on the same port.\n"
    )
    .map_err(stdout_err)?;
    ok &= act(cfg, true, out)?;
    if interrupt::requested() {
        return Ok(INTERRUPTED);
    }
    Ok(if ok { exit::OK } else { exit::NOT_FOUND })
}

fn act(cfg: &DemoConfig, reuseport: bool, out: &mut impl Write) -> Result<bool> {
    let server = Server::start(reuseport)?;
    let port = server.ready.port;
    let mode = if reuseport {
        "--reuseport"
    } else {
        "(shared socket)"
    };
    writeln!(
        out,
        "$ sockmap serve --port {port} --workers 2 {mode}    # pids {}",
        join(&server.ready.pids)
    )
    .map_err(stdout_err)?;
    writeln!(
        out,
        "$ sockmap load --connect 127.0.0.1:{port} --clients {} --rounds {} --size {}B",
        cfg.clients, cfg.rounds, cfg.size
    )
    .map_err(stdout_err)?;

    let load_cfg = LoadConfig {
        connect: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        clients: cfg.clients,
        rounds: cfg.rounds,
        size: cfg.size,
        timeout: Duration::from_secs(20),
        json: false,
        mode: lab::LoadMode::Echo,
    };
    let load = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = lab::load::run(&load_cfg, &mut buf);
        (r, buf)
    });

    // Inspect while the load runs; keep the report with the deepest queue.
    let query = Query::new(vec![Target::port(
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port,
    )]);
    let mut collector = Collector::new()?;
    let mut best: Option<(u32, Report)> = None;
    let started = Instant::now();
    let mut samples = 0;
    while !load.is_finished()
        && started.elapsed() < Duration::from_secs(60)
        && !interrupt::requested()
    {
        let snap = collector.snapshot(&query)?;
        let report = analyze::report(&query, &snap);
        samples += 1;
        let depth: u32 = report
            .sockets
            .iter()
            .filter_map(|s| s.accept_queue)
            .map(|q| q.depth)
            .sum();
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, report));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if interrupt::requested() {
        return Ok(false);
    }
    let (load_result, load_out) = load
        .join()
        .map_err(|_| failed("the load thread panicked"))?;
    let load_ok = load_result?;
    // A load that finished before the first look: inspect once now.
    let report = match best {
        Some((_, r)) => r,
        None => analyze::report(&query, &collector.snapshot(&query)?),
    };

    writeln!(out, "\n$ sockmap inspect 127.0.0.1:{port}    # taken while the load ran ({samples} looks, deepest queue shown)")
        .map_err(stdout_err)?;
    render::table::write(out, &report, false).map_err(stdout_err)?;
    out.write_all(&load_out).map_err(stdout_err)?;

    let done = server.stop();
    writeln!(out, "\nAccept distribution:").map_err(stdout_err)?;
    match &done {
        Some(d) => {
            for w in &d.workers {
                match w.accepted {
                    Some(n) => writeln!(
                        out,
                        "  pid {} accepted {n} ({:.1}%)",
                        w.pid,
                        100.0 * n as f64 / d.total.max(1) as f64
                    ),
                    None => writeln!(out, "  pid {} accepted ? (worker died)", w.pid),
                }
                .map_err(stdout_err)?;
            }
        }
        None => writeln!(out, "  (the server printed no distribution)").map_err(stdout_err)?,
    }

    let proof = proof(&report, done.as_ref(), reuseport);
    writeln!(out, "\n{}", proof.1).map_err(stdout_err)?;
    Ok(load_ok && proof.0)
}

/// The sentence the demo exists for, and whether the run showed it.
fn proof(report: &Report, done: Option<&ServeReport>, reuseport: bool) -> (bool, String) {
    let listeners: Vec<_> = report
        .sockets
        .iter()
        .filter(|s| s.accept_queue.is_some())
        .collect();
    let mut fds: BTreeMap<u32, u32> = BTreeMap::new();
    for s in &listeners {
        for h in &s.holders {
            fds.insert(h.pid, h.fd);
        }
    }
    let busy = done.map_or(0, |d| {
        d.workers
            .iter()
            .filter(|w| w.accepted.unwrap_or(0) > 0)
            .count()
    });
    let holders = fds
        .iter()
        .map(|(p, f)| format!("pid {p} fd {f}"))
        .collect::<Vec<_>>()
        .join(", ");
    let backlog = listeners
        .first()
        .and_then(|s| s.accept_queue)
        .map_or(0, |q| q.backlog);
    let max_depth = listeners
        .iter()
        .filter_map(|s| s.accept_queue)
        .map(|q| q.depth)
        .max()
        .unwrap_or(0);
    if !reuseport {
        let shared = listeners.len() == 1
            && report
                .groups
                .first()
                .is_some_and(|g| g.kind == GroupKind::Shared);
        let inode = listeners.first().map_or(0, |s| s.inode.0);
        let text = format!(
            "Proof: {holders} {} point to ONE socket, inode {inode}: the same struct file, the same listening\n\
             sock, ONE accept queue (depth {max_depth} of backlog {backlog} at the deepest look). Both processes\n\
             sleep in accept() on it and whoever the kernel wakes takes the next connection: {busy} of 2 workers got some.",
            if fds.len() == 2 { "both" } else { "all" }
        );
        (shared, text)
    } else {
        let inodes = listeners
            .iter()
            .map(|s| s.inode.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let group = report
            .groups
            .first()
            .is_some_and(|g| g.kind == GroupKind::Reuseport);
        let text = format!(
            "Proof: {} sockets (inodes {inodes}), one per worker ({holders}): {} accept queues.\n\
             The kernel hashes each new connection's addresses and ports to one socket of the group;\n\
             a worker only ever accepts from its own queue: {busy} of 2 workers got some.",
            listeners.len(),
            listeners.len()
        );
        (group && listeners.len() == 2, text)
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}
