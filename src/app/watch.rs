//! `sockmap watch`: sample the target's queues every interval, with the
//! rescan policy of `sampler` (netlink every tick; holders carried over,
//! or rescanned with the BPF scan when it is in use).
//! With no target it is an overview of every listener, the ones in
//! trouble first: sorted by drops in the last interval, then by how full
//! the accept queue is.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::sampler::{Policy, Sampler};
use super::{interrupt, stdout_err, WatchConfig};
use crate::analyze;
use crate::collect::host;
use crate::error::{exit, Result};
use crate::model::watch::{Sample, SampleSocket};
use crate::model::Inode;
use crate::render::json;
use crate::render::watch::{frame, overview, rank, History};

pub fn run(cfg: &WatchConfig, out: &mut impl Write) -> Result<i32> {
    interrupt::install()?;
    let json = cfg.json || !std::io::stdout().is_terminal();
    let every_listener = cfg.query.is_empty();
    let mut sampler =
        Sampler::new(&cfg.query, Policy::Watch, cfg.netns.clone())?.with_scan(cfg.scan);
    let proc_root = sampler.proc_root();
    let start = Instant::now();
    let mut prev_counters = host::read_counters(&proc_root).unwrap_or_default();
    let mut prev_drops: HashMap<Inode, u32> = HashMap::new();
    let mut prev_udp = host::read_udp_counters(&proc_root).unwrap_or_default();
    let mut history = History::default();
    // Never 0 with nothing: a watch in which no sample matched exits 1.
    let mut ever_matched = false;
    let mut told_empty = false;
    let mut seq = 0u64;
    let mut next = start;
    loop {
        seq += 1;
        let snap = sampler.sample()?;
        if seq == 1 {
            super::tell_scan(&mut std::io::stderr(), cfg.scan, snap.scan.as_ref());
        }
        let report = analyze::report(&cfg.query, snap);
        // TcpExt counters are per namespace: those of the watched
        // sockets' namespace when they share one, else ours.
        let counters = watched_netns(&report)
            .and_then(|ns| sampler.counters(ns))
            .or_else(|| host::read_counters(&proc_root).ok())
            .unwrap_or_default();
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
        if report.sockets.is_empty() {
            if !told_empty {
                let _ = writeln!(
                    std::io::stderr(),
                    "sockmap: nothing matches {} right now; watching for it",
                    crate::escape::terminal(&cfg.query.to_string())
                );
                told_empty = true;
            }
        } else {
            ever_matched = true;
        }
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
                    netns: s.netns.inode,
                    // Unknown in the first sample and for a socket new since
                    // the last; 0 when the kernel reports no drop counter.
                    drops_delta: match (s.drops, prev_drops.get(&s.inode)) {
                        (Some(now), Some(&before)) if seq > 1 => Some(now.saturating_sub(before)),
                        _ => None,
                    },
                    commands: s
                        .holders
                        .iter()
                        .map(|h| h.comm.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
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
                        .collect::<HashSet<_>>()
                        .len(),
                    waiters: s.waiters.len(),
                })
                .collect(),
            counters: delta,
            udp_counters: udp_delta,
            warnings: report.warnings.clone(),
        };
        let mut sample = sample;
        if every_listener {
            sample.sockets.sort_by(rank);
        }
        prev_drops = sample
            .sockets
            .iter()
            .filter_map(|s| Some((s.inode, s.drops?)))
            .collect();
        history.push(&sample);
        if json {
            json::line(out, &sample).map_err(stdout_err)?;
        } else if every_listener {
            overview(out, &sample, &history, cfg.interval.as_millis(), cfg.redraw)
                .map_err(stdout_err)?;
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
    if !ever_matched {
        let _ = writeln!(
            std::io::stderr(),
            "sockmap: nothing matched {} in any of {seq} sample{}",
            crate::escape::terminal(&cfg.query.to_string()),
            if seq == 1 { "" } else { "s" }
        );
        return Ok(exit::NOT_FOUND);
    }
    Ok(exit::OK)
}

/// The namespace all the report's sockets live in, if they share one.
fn watched_netns(report: &crate::model::report::Report) -> Option<u64> {
    let mut it = report.sockets.iter().map(|s| s.netns.inode);
    let first = it.next()?;
    it.all(|ns| ns == first).then_some(first)
}
