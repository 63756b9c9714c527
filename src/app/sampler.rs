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
//!
//! With the BPF holder scan (loaded once; a full pass with it takes ~8 ms
//! at 600 × 60 and ~17 ms at 2000 × 50) samples are full passes, holders
//! included, as often as `BPF_PASS_SHARE` of a core allows — every sample
//! when they are that cheap at this rate; the samples between ask netlink
//! only and drop holders that exited. A pass every sample would cost ~15 %
//! of a core at 10 Hz and 2000 × 50; with this share holders are at most
//! ~2 s old there, ~1 s at 600 × 60 (BENCHMARKS.md).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::Collector;
use crate::error::Result;
use crate::model::netns::NetnsScope;
use crate::model::scan::ScanOptions;
use crate::model::{ListenCounters, Snapshot, WarningKind};
use crate::target::Query;

/// The share of one core full passes with the BPF scan may use.
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
    /// holders come from the /proc policy).
    bpf_gap: Option<Duration>,
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
        let due = self.bpf_gap.unwrap_or_else(|| self.policy.rescan());
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
        self.bpf_gap = self.collector.holders_from_bpf().then(|| {
            self.last_scan = started;
            bpf_rescan_gap(started.elapsed(), self.policy.rescan())
        });
        Ok(snap)
    }

    fn refresh(&mut self, prev: &Snapshot) -> Result<Snapshot> {
        let mut snap = match self.policy {
            Policy::Watch => self.collector.refresh(&self.query, prev)?,
            Policy::Export => self.carry_over(prev)?,
        };
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
