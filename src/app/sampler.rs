//! The rescan policies of `watch` and `export`: the first sample is a
//! full pass; later ones ask netlink only (microseconds) and carry the
//! holders over, scanning only processes that appeared since.
//!
//! `Policy::Watch`: new processes every 2 s, a full /proc rescan when the
//! socket set changes or every 30 s — a person watching wants holders
//! right. `Policy::Export`: new processes every scrape, a full rescan
//! every 5 minutes and never because the socket set changed — on a busy
//! host listeners come and go between most scrapes, and a full scan
//! costs ~0.3 CPU-seconds at 2000 processes × 50 fds. A socket opened by
//! a process that was already running shows its holders at the next full
//! rescan. The mechanism (`Collector::refresh`, `update_holders`) lives
//! in collect.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::Collector;
use crate::error::Result;
use crate::model::netns::NetnsScope;
use crate::model::{ListenCounters, Snapshot, WarningKind};
use crate::target::Query;

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
        })
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
        let next = match self.snap.take() {
            Some(prev) if self.last_scan.elapsed() < self.policy.rescan() => self.refresh(&prev),
            _ => self.full(),
        };
        Ok(self.snap.insert(next?))
    }

    fn full(&mut self) -> Result<Snapshot> {
        let snap = self.collector.snapshot(&self.query)?;
        self.last_scan = Instant::now();
        self.last_new_pids = self.last_scan;
        Ok(snap)
    }

    fn refresh(&mut self, prev: &Snapshot) -> Result<Snapshot> {
        let mut snap = match self.policy {
            Policy::Watch => self.collector.refresh(&self.query, prev)?,
            Policy::Export => self.carry_over(prev)?,
        };
        if self.last_new_pids.elapsed() >= self.policy.new_pids() {
            self.collector.update_holders(&mut snap)?;
            self.last_new_pids = Instant::now();
        }
        Ok(snap)
    }

    /// Sockets and SYN queues now, holders (and waiters, SO_REUSEPORT) of
    /// the sockets still there carried over from `prev`.
    fn carry_over(&mut self, prev: &Snapshot) -> Result<Snapshot> {
        let mut warnings = Vec::new();
        // pid: targets select sockets by inode: keep the ones already known.
        let extra: HashSet<u64> = if self.query.pids().next().is_some() {
            prev.sockets.iter().map(|s| s.inode.0).collect()
        } else {
            HashSet::new()
        };
        let (sockets, mut netns) = self.collector.sockets(&self.query, &extra, &mut warnings)?;
        netns.of_pid = prev.netns.of_pid.clone();
        let request_socks = self
            .collector
            .request_socks(&sockets, &netns, &mut warnings);
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
            warnings,
            netns,
            ..prev.clone()
        };
        snap.holders.retain(|i, _| live.contains(i));
        snap.waiters.retain(|i, _| live.contains(i));
        Ok(snap)
    }
}
