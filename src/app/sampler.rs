//! The rescan policies of `watch` and `export`: the first sample is a
//! full pass; later ones ask netlink for the sockets and find holders as
//! cheaply as the holder scan allows.
//!
//! With the BPF holder scan (kernel >= 6.7 for the watch program), every
//! tick finds the holders of the sockets it shows again: one pass of
//! `bpf/holders_watch.bpf.c` (`Collector::watch_scan`) reads the fd
//! tables of the holders and of every process started since the last
//! tick and compares them with those sockets' files, in the kernel; it
//! also reads each TCP listener's SYN queue, so no request-socket dump
//! walks the established hash for them. Every full pass (when the socket
//! set changes in `watch`, and every `Policy::rescan`) finds the files
//! again, reading every table. A socket passed to an older process
//! (SCM_RIGHTS) shows at the next full pass. Measured at 2000 processes x
//! 50 fds: BENCHMARKS.md.
//!
//! With the BPF scan but no watch walk (kernels 6.4-6.6, the task_file
//! tier, more than 256 sockets, a pass that does not fit), full passes run
//! as often as `BPF_PASS_SHARE` of a core allows, netlink only in between.
//!
//! Without BPF (not root, `--scan proc`): `Policy::Watch` scans new
//! processes every 2 s and runs a full /proc rescan when the socket set
//! changes or every 30 s — a person watching wants holders right.
//! `Policy::Export` scans new processes every scrape and runs a full
//! rescan every 5 minutes and never because the socket set changed — on a
//! busy host listeners come and go between most scrapes, and a full /proc
//! scan costs ~0.3 CPU-seconds at 2000 processes x 50 fds. A socket
//! opened by a process that was already running shows its holders at the
//! next full rescan. The mechanism (`Collector::refresh_walk`,
//! `update_holders`, `watch_scan`) lives in collect.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::{Collector, Refreshed};
use crate::error::Result;
use crate::model::netns::NetnsScope;
use crate::model::scan::ScanOptions;
use crate::model::{Inode, ListenCounters, Snapshot, WarningKind};
use crate::target::Query;

/// The share of one core full passes with the BPF scan may use when the
/// watch walk cannot be used.
const BPF_PASS_SHARE: f64 = 0.01;

/// How long to wait after a full pass that took `pass` before the next
/// one, to stay within `BPF_PASS_SHARE` (at most `cap`).
fn bpf_rescan_gap(pass: Duration, cap: Duration) -> Duration {
    pass.div_f64(BPF_PASS_SHARE).min(cap)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Watch,
    Export,
}

impl Policy {
    /// A full /proc rescan at least this often.
    fn rescan(self) -> Duration {
        match self {
            Policy::Watch => Duration::from_secs(30),
            Policy::Export => Duration::from_secs(300),
        }
    }

    /// New processes scanned at most this often.
    fn new_pids(self) -> Duration {
        match self {
            Policy::Watch => Duration::from_secs(2),
            Policy::Export => Duration::ZERO,
        }
    }
}

pub struct Sampler {
    policy: Policy,
    collector: Collector,
    query: Query,
    snap: Option<Snapshot>,
    last_scan: Instant,
    last_new_pids: Instant,
    /// With the BPF scan: the wait before the next full pass (`None`:
    /// holders come from the watch walk or the /proc policy).
    bpf_gap: Option<Duration>,
    /// The last tick's watch walk worked: holders come from it.
    walks: bool,
}

impl Sampler {
    /// A sampler over the network namespaces in `scope`; it keeps each
    /// namespace's diag socket (and counters file) open between samples.
    pub fn new(query: &Query, policy: Policy, scope: NetnsScope) -> Result<Self> {
        let now = Instant::now();
        Ok(Sampler {
            policy,
            collector: Collector::with_netns(scope)?.with_counters(),
            query: query.clone(),
            snap: None,
            last_scan: now,
            last_new_pids: now,
            bpf_gap: None,
            walks: false,
        })
    }

    /// Find holders as `scan` says (`--scan`, `--verbose`).
    pub fn with_scan(mut self, scan: ScanOptions) -> Self {
        self.collector.set_scan(scan);
        self
    }

    pub fn proc_root(&self) -> PathBuf {
        self.collector.proc_root().to_path_buf()
    }

    /// The TcpExt listen counters of namespace `ns` (nsfs inode), read
    /// from inside it; `None` when it is not open (or has no counters).
    pub fn counters(&mut self, ns: u64) -> Option<ListenCounters> {
        self.collector.counters(ns)
    }

    /// The current snapshot, collected as the policy says. After an error
    /// the next call starts over with a full pass.
    pub fn sample(&mut self) -> Result<&Snapshot> {
        let due = match self.bpf_gap {
            Some(gap) if !self.walks => gap,
            _ => self.policy.rescan(),
        };
        let next = match self.snap.take() {
            Some(prev) if self.last_scan.elapsed() < due => self.refresh(&prev),
            _ => self.full(),
        };
        Ok(self.snap.insert(next?))
    }

    fn full(&mut self) -> Result<Snapshot> {
        let started = Instant::now();
        let snap = self.collector.snapshot(&self.query)?;
        self.last_new_pids = Instant::now();
        // The /proc policy counts from the end of the pass; the BPF gap
        // from its start, as the ticks do.
        self.last_scan = self.last_new_pids;
        let bpf = self.collector.holders_from_bpf();
        self.bpf_gap = bpf.then(|| {
            self.last_scan = started;
            bpf_rescan_gap(started.elapsed(), self.policy.rescan())
        });
        if bpf {
            // Load the watch program (the first time) and find the
            // watched sockets' files now, reading every table: part of
            // the pass, so the ticks after it stay cheap and even and no
            // process started since the holder scan is missed. The full
            // pass's holders are the answer.
            self.walks = self
                .collector
                .watch_scan(&snap.sockets, &snap.holders, true)
                .is_some();
        }
        Ok(snap)
    }

    fn refresh(&mut self, prev: &Snapshot) -> Result<Snapshot> {
        let walk = self.walks && self.collector.holders_from_bpf();
        let done = match self.policy {
            Policy::Watch => self.collector.refresh_walk(&self.query, prev, walk)?,
            Policy::Export => self.carry_over(prev, walk)?,
        };
        self.walks = done.walked;
        let mut snap = done.snap;
        if done.full || done.walked {
            return Ok(snap);
        }
        if self.bpf_gap.is_some() {
            // The next BPF pass finds newcomers; a departure shows now.
            self.collector.forget_exited_holders(&mut snap);
        } else if self.last_new_pids.elapsed() >= self.policy.new_pids() {
            self.collector.update_holders(&mut snap)?;
            self.last_new_pids = Instant::now();
        }
        Ok(snap)
    }

    /// Sockets and SYN queues now, holders (and waiters, SO_REUSEPORT) of
    /// the sockets still there carried over from `prev` — or, with `walk`,
    /// found again by a BPF watch walk over the sockets there now.
    fn carry_over(&mut self, prev: &Snapshot, walk: bool) -> Result<Refreshed> {
        let mut warnings = Vec::new();
        // pid: targets select sockets by inode: keep the ones already known.
        let extra: HashSet<u64> = if self.query.pids().next().is_some() {
            prev.sockets.iter().map(|s| s.inode.0).collect()
        } else {
            HashSet::new()
        };
        let (sockets, mut netns) = self.collector.sockets(&self.query, &extra, &mut warnings)?;
        netns.of_pid = prev.netns.of_pid.clone();
        let scan = if walk {
            self.collector.watch_scan(&sockets, &prev.holders, false)
        } else {
            None
        };
        let syn_queue: HashMap<Inode, u32> = scan
            .as_ref()
            .map(|w| w.syn_queue.clone())
            .unwrap_or_default();
        let request_socks =
            self.collector
                .request_socks(&sockets, &syn_queue, &netns, &mut warnings);
        warnings.extend(
            prev.warnings
                .iter()
                .filter(|w| w.kind != WarningKind::SynQueueUnmeasured)
                .cloned(),
        );
        let live: HashSet<_> = sockets.iter().map(|s| s.inode).collect();
        let mut snap = Snapshot {
            sockets,
            request_socks,
            syn_queue,
            warnings,
            netns,
            ..prev.clone()
        };
        snap.holders.retain(|i, _| live.contains(i));
        snap.waiters.retain(|i, _| live.contains(i));
        let walked = scan.is_some();
        if let Some(w) = scan {
            self.collector.apply_watch(&mut snap, w);
        }
        Ok(Refreshed {
            snap,
            full: false,
            walked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_rescan_gap_keeps_the_share() {
        let cap = Duration::from_secs(30);
        let ms = Duration::from_millis;
        // 1 ms passes fit a 100 ms tick; 8 ms passes wait 0.8 s.
        assert_eq!(bpf_rescan_gap(ms(1), cap), ms(100));
        assert_eq!(bpf_rescan_gap(ms(8), cap), ms(800));
        assert_eq!(bpf_rescan_gap(Duration::ZERO, cap), Duration::ZERO);
        assert_eq!(bpf_rescan_gap(Duration::from_secs(1), cap), cap);
    }
}
