//! `sockmap watch`: sample the target's queues every interval. The first
//! sample is a full pass. With the BPF holder scan (loaded once) later
//! samples are full passes too — every tick, as long as the holder scans
//! stay under `BPF_SCAN_SHARE` of a core; on a host where one scan costs
//! more than that allows (a 100 ms tick over ~100k fds), every few ticks,
//! the ticks between asking netlink only and dropping holders that exited. Without BPF, later samples ask
//! netlink only (microseconds) and the holders are kept current by scanning
//! only new processes every `NEW_PIDS`, with a full /proc rescan when the
//! socket set changes or every `RESCAN` — so a 10 Hz watch stays cheap on
//! a crowded host.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{interrupt, stdout_err, WatchConfig};
use crate::analyze;
use crate::collect::{host, Collector};
use crate::error::{exit, Result};
use crate::model::watch::{Sample, SampleSocket};
use crate::render::json;
use crate::render::watch::{frame, History};

const RESCAN: Duration = Duration::from_secs(30);
const NEW_PIDS: Duration = Duration::from_secs(2);
/// The share of one core the BPF holder rescans may use.
const BPF_SCAN_SHARE: f64 = 0.015;

/// How long to wait after a BPF holder scan that took `scan_ms` before the
/// next one, to stay within `BPF_SCAN_SHARE`.
fn bpf_rescan_gap(scan_ms: f64) -> Duration {
    Duration::from_secs_f64((scan_ms / 1000.0 / BPF_SCAN_SHARE).clamp(0.0, RESCAN.as_secs_f64()))
}

pub fn run(cfg: &WatchConfig, out: &mut impl Write) -> Result<i32> {
    interrupt::install()?;
    let json = cfg.json || !std::io::stdout().is_terminal();
    let mut collector = Collector::with_scan(cfg.scan)?;
    let proc_root = collector.proc_root().to_path_buf();
    let start = Instant::now();
    let mut snap = collector.snapshot(&cfg.query)?;
    super::tell_scan(&mut std::io::stderr(), cfg.scan, snap.scan.as_ref());
    let bpf = collector.holders_from_bpf();
    let scan_gap = |snap: &crate::model::Snapshot| {
        bpf_rescan_gap(snap.scan.as_ref().map_or(0.0, |s| s.duration_ms))
    };
    let mut bpf_gap = scan_gap(&snap);
    let mut last_scan = start;
    let mut last_new_pids = start;
    let mut prev_counters = host::read_counters(&proc_root).unwrap_or_default();
    let mut prev_udp = host::read_udp_counters(&proc_root).unwrap_or_default();
    let mut history = History::default();
    let mut seq = 0u64;
    let mut next = start;
    loop {
        seq += 1;
        if seq > 1 {
            if bpf {
                if last_scan.elapsed() >= bpf_gap {
                    last_scan = Instant::now();
                    snap = collector.snapshot(&cfg.query)?;
                    bpf_gap = scan_gap(&snap);
                } else {
                    snap = collector.refresh(&cfg.query, &snap)?;
                    collector.forget_exited_holders(&mut snap);
                }
            } else if last_scan.elapsed() >= RESCAN {
                snap = collector.snapshot(&cfg.query)?;
                last_scan = Instant::now();
                last_new_pids = last_scan;
            } else {
                snap = collector.refresh(&cfg.query, &snap)?;
                if last_new_pids.elapsed() >= NEW_PIDS {
                    collector.update_holders(&mut snap)?;
                    last_new_pids = Instant::now();
                }
            }
        }
        let counters = host::read_counters(&proc_root).unwrap_or_default();
        // The first sample has no interval behind it: all-zero deltas (a
        // counter this kernel lacks stays null).
        let delta = if seq == 1 {
            counters.delta(&counters)
        } else {
            counters.delta(&prev_counters)
        };
        prev_counters = counters;
        let udp = host::read_udp_counters(&proc_root).unwrap_or_default();
        let udp_delta = udp.delta(if seq == 1 { &udp } else { &prev_udp });
        prev_udp = udp;
        let report = analyze::report(&cfg.query, &snap);
        let sample = Sample {
            schema: crate::model::report::SCHEMA,
            kind: "sample",
            seq,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            elapsed_ms: start.elapsed().as_millis() as u64,
            sockets: report
                .sockets
                .iter()
                .map(|s| SampleSocket {
                    inode: s.inode,
                    proto: s.proto,
                    state: s.state,
                    local_addr: s.local_addr,
                    local_port: s.local_port,
                    path: s.path.clone(),
                    unix_name: s.unix_name.clone(),
                    accept_queue: s.accept_queue,
                    syn_queue: s.syn_queue,
                    recv_q: s.recv_q,
                    rcvbuf: s.rcvbuf,
                    drops: s.drops,
                    holders: s
                        .holders
                        .iter()
                        .map(|h| h.pid)
                        .collect::<std::collections::HashSet<_>>()
                        .len(),
                    waiters: s.waiters.len(),
                })
                .collect(),
            counters: delta,
            udp_counters: udp_delta,
            warnings: report.warnings.clone(),
        };
        history.push(&sample);
        if json {
            json::line(out, &sample).map_err(stdout_err)?;
        } else {
            frame(
                out,
                &sample,
                &history,
                &cfg.query.to_string(),
                cfg.interval.as_millis(),
                cfg.redraw,
            )
            .map_err(stdout_err)?;
        }
        if cfg.count.is_some_and(|c| seq >= c) || interrupt::requested() {
            break;
        }
        next += cfg.interval;
        // Fell behind (a slow scan): start the next interval from now.
        if next < Instant::now() {
            next = Instant::now() + cfg.interval;
        }
        interrupt::sleep_until(next);
        if interrupt::requested() {
            break;
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescan_gap_keeps_the_share() {
        // 1.5 ms scans fit a 100 ms tick; 6 ms scans wait 400 ms.
        assert_eq!(bpf_rescan_gap(1.5), Duration::from_millis(100));
        assert_eq!(bpf_rescan_gap(6.0), Duration::from_millis(400));
        assert_eq!(bpf_rescan_gap(0.0), Duration::ZERO);
        assert_eq!(bpf_rescan_gap(1e9), RESCAN);
    }
}
