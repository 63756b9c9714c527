//! `sockmap load`: the experiment's client. `clients` concurrent
//! connections, all opened at once. In echo mode each sends `size` bytes
//! and reads the same bytes back, `rounds` times, verifying every byte
//! (any echo server); in hold mode each keeps its connection open for the
//! hold time (fills a real server's accept queue); in http mode each sends
//! `GET /` and reads one response per round (any HTTP/1.1 server). Owns the fd limit, the I/O threads, the
//! merge of their stats and the report; the per-connection work is in
//! `client`.
//!
//! Concurrency model: a fixed set of I/O threads, each multiplexing its
//! share of the connections with epoll (non-blocking sockets). A
//! one-thread-per-client design would need 10,000 threads (and their stacks) for
//! `--clients 10000`; epoll needs a socket per client and nothing more.
//! Since every wait is in epoll, about one thread per core already keeps
//! the CPUs busy; twice that leaves slack for a thread busy verifying a
//! large read while its other connections have data ready.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use super::client::{self, Plan, Stats};
use super::message::{
    FailKind, Failures, FirstError, LoadModeName, LoadReport, Percentiles, FAIL_KINDS,
};
use super::pattern::Pattern;
use super::{LoadConfig, LoadMode};
use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::process::{Resource, Rlimit};

/// File descriptors beyond one per client: stdio, epoll fds, and whatever
/// the process (e.g. `demo`, scanning /proc meanwhile) has open.
const FD_MARGIN: u64 = 128;

/// Run the load; Ok(true) when every client succeeded.
pub fn run(cfg: &LoadConfig, out: &mut dyn Write) -> Result<bool> {
    // A held connection is one "round": there is nothing to repeat.
    let cfg = &LoadConfig {
        rounds: match cfg.mode {
            LoadMode::Hold(_) => 1,
            _ => cfg.rounds,
        },
        ..cfg.clone()
    };
    let threads = io_threads(cfg.clients);
    raise_fd_limit(cfg.clients + threads as u64 + FD_MARGIN, cfg.clients)?;
    let plan = Arc::new(Plan {
        addr: cfg.connect,
        rounds: cfg.rounds,
        size: cfg.size,
        timeout: cfg.timeout,
        mode: cfg.mode,
        host: cfg.connect.to_string(),
    });
    let pattern = Arc::new(Pattern::new());
    let progress = progress_bar(cfg.clients * u64::from(cfg.rounds));

    let started = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let ids: Vec<u64> = (t as u64..cfg.clients).step_by(threads).collect();
        let (plan, pattern, progress) = (Arc::clone(&plan), Arc::clone(&pattern), progress.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("load-io-{t}"))
            .spawn(move || client::run_thread(&plan, &ids, &pattern, progress.as_ref()));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // The threads already running finish on their own (each
                // client ends by success, failure or timeout); wait for them.
                for h in handles {
                    let _ = h.join();
                }
                return Err(Error::os("cannot start a load I/O thread", e));
            }
        }
    }
    let mut all = Vec::with_capacity(threads);
    for h in handles {
        match h.join() {
            Ok(s) => all.push(s),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.finish_and_clear();
    }

    let report = build_report(cfg, all, seconds, threads);
    let written = if cfg.json {
        serde_json::to_writer(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write_text(out, &report)
    };
    written
        .and_then(|()| out.flush())
        .map_err(|source| Error::Write {
            what: "stdout",
            source,
        })?;
    Ok(report.failed == 0)
}

fn io_threads(clients: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * cores)
        .min(usize::try_from(clients).unwrap_or(usize::MAX))
        .max(1)
}

/// Raise the soft RLIMIT_NOFILE to `need` if it is lower (up to the hard
/// limit); if even the hard limit is too low, say what to do.
fn raise_fd_limit(need: u64, clients: u64) -> Result<()> {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    if lim.current.is_none_or(|soft| soft >= need) {
        return Ok(());
    }
    if let Some(hard) = lim.maximum.filter(|&hard| hard < need) {
        return Err(Error::Usage(fd_limit_message(need, clients, hard)));
    }
    rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(need),
            maximum: lim.maximum,
        },
    )
    .map_err(|e| {
        Error::os(
            format!("cannot raise the open-file limit to {need}"),
            e.into(),
        )
    })
}

fn fd_limit_message(need: u64, clients: u64, hard: u64) -> String {
    let fit = hard.saturating_sub(need - clients);
    format!(
        "{clients} clients need about {need} open files, but the hard limit is {hard}: \
         raise it (`ulimit -n {need}` as root, or LimitNOFILE= for a service) \
         or use fewer --clients (at most about {fit})"
    )
}

/// A bar on stderr when it is a terminal; none when piped.
fn progress_bar(rounds_total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(rounds_total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} rounds ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

fn build_report(cfg: &LoadConfig, parts: Vec<Stats>, seconds: f64, threads: usize) -> LoadReport {
    let mut connect_ms = Vec::new();
    let mut round_trip_ms = Vec::new();
    let (mut bytes, mut bytes_sent) = (0, 0);
    let mut counts = [0u64; FAIL_KINDS];
    let mut first: [Option<String>; FAIL_KINDS] = Default::default();
    for s in parts {
        connect_ms.extend(s.connect_ms);
        round_trip_ms.extend(s.round_trip_ms);
        bytes += s.bytes;
        bytes_sent += s.bytes_sent;
        for (i, n) in s.failures.iter().enumerate() {
            counts[i] += n;
        }
        for (slot, msg) in first.iter_mut().zip(s.first_error) {
            if slot.is_none() {
                *slot = msg;
            }
        }
    }
    let first_errors = FailKind::ALL
        .iter()
        .filter_map(|&kind| {
            first[kind as usize]
                .take()
                .map(|message| FirstError { kind, message })
        })
        .collect();
    LoadReport {
        schema: 1,
        connect: cfg.connect.to_string(),
        mode: cfg.mode.name(),
        hold_seconds: match cfg.mode {
            LoadMode::Hold(d) => Some(d.as_secs_f64()),
            _ => None,
        },
        clients: cfg.clients,
        rounds: cfg.rounds,
        size: cfg.size,
        bytes,
        bytes_sent,
        failed: counts.iter().sum(),
        failures: Failures::from_counts(&counts),
        first_errors,
        seconds,
        throughput_mib_s: if seconds > 0.0 {
            bytes as f64 / seconds / (1024.0 * 1024.0)
        } else {
            0.0
        },
        connect_ms: percentiles(connect_ms),
        round_trip_ms: percentiles(round_trip_ms),
        threads,
    }
}

/// p50 and p99 by nearest rank.
fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
        Some(v[i.clamp(1, v.len()) - 1])
    };
    Percentiles {
        p50: rank(50.0),
        p99: rank(99.0),
    }
}

/// "512 KiB", "5.00 GiB", "100 B".
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3} ms"))
}

fn write_text(out: &mut dyn Write, r: &LoadReport) -> std::io::Result<()> {
    match r.mode {
        LoadModeName::Hold => {
            let hold = r.hold_seconds.unwrap_or_default();
            writeln!(
                out,
                "load {}: {} clients, each holding its connection {hold} s",
                r.connect, r.clients
            )?;
            writeln!(
                out,
                "held {} of {} connections to the end in {:.2} s ({} I/O threads)",
                r.clients - r.failed,
                r.clients,
                r.seconds,
                r.threads
            )?;
        }
        LoadModeName::Http => {
            writeln!(
                out,
                "load {}: {} clients x {} rounds of GET /",
                r.connect, r.clients, r.rounds
            )?;
            writeln!(
                out,
                "received {} in {:.2} s: {:.1} MiB/s ({} I/O threads)",
                human_bytes(r.bytes),
                r.seconds,
                r.throughput_mib_s,
                r.threads
            )?;
        }
        LoadModeName::Echo => {
            writeln!(
                out,
                "load {}: {} clients x {} rounds x {}",
                r.connect,
                r.clients,
                r.rounds,
                human_bytes(r.size)
            )?;
            writeln!(
                out,
                "echoed and verified {} in {:.2} s: {:.1} MiB/s ({} I/O threads)",
                human_bytes(r.bytes),
                r.seconds,
                r.throughput_mib_s,
                r.threads
            )?;
        }
    }
    let kinds: Vec<String> = FailKind::ALL
        .iter()
        .map(|&k| (k.name(), r.failures.of(k)))
        .filter(|&(_, n)| n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if kinds.is_empty() {
        writeln!(out, "failed 0 of {} clients", r.clients)?;
    } else {
        writeln!(
            out,
            "failed {} of {} clients: {}",
            r.failed,
            r.clients,
            kinds.join(", ")
        )?;
        for e in &r.first_errors {
            writeln!(out, "  first {}: {}", e.kind.name(), e.message)?;
        }
    }
    writeln!(
        out,
        "connect latency p50 {}, p99 {}",
        ms(r.connect_ms.p50),
        ms(r.connect_ms.p99)
    )?;
    writeln!(
        out,
        "round trip      p50 {}, p99 {}",
        ms(r.round_trip_ms.p50),
        ms(r.round_trip_ms.p99)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p99), (Some(50.0), Some(99.0)));
        let p = percentiles(vec![7.0]);
        assert_eq!((p.p50, p.p99), (Some(7.0), Some(7.0)));
        let p = percentiles(Vec::new());
        assert_eq!((p.p50, p.p99), (None, None));
    }

    #[test]
    fn sizes_read_like_the_flags() {
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_bytes(512 * 1024), "512 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5 GiB");
        assert_eq!(human_bytes(1536), "1.50 KiB");
    }

    #[test]
    fn the_fd_limit_message_says_what_to_do() {
        let m = fd_limit_message(1128 + 4, 1000, 1024);
        assert!(m.contains("1132 open files"), "{m}");
        assert!(m.contains("hard limit is 1024"), "{m}");
        assert!(m.contains("ulimit -n 1132"), "{m}");
        assert!(m.contains("fewer --clients (at most about 892)"), "{m}");
    }

    #[test]
    fn threads_never_exceed_clients() {
        assert_eq!(io_threads(1), 1);
        assert!(io_threads(10_000) >= 2);
    }
}
