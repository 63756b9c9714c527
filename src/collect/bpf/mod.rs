//! Holders from a BPF iterator, with the /proc scan as the fallback.
//!
//! As root on a kernel with BTF, an iterator program (`bpf/*.bpf.c`, built
//! ahead of time into the light-skeleton blobs under `bpf/gen/`) walks
//! every fd table in the kernel and emits (tgid, fd, socket inode,
//! SO_REUSEPORT) for each socket fd: one read instead of a `readlinkat`
//! per fd of every process; it also reports each process's network
//! namespace. Each hit a pass keeps is then confirmed with one
//! `readlinkat(/proc/PID/fd/FD)` (`holders`), which drops children caught
//! between fork and exec and tables read while a process exited.
//!
//! Tiers: the `iter/task` fd-table walk, else the `iter/task_file`
//! program, else the /proc scan (`fdscan`) — when not root, without BTF,
//! in a non-initial pid namespace (the iterator reports initial-namespace
//! pids), or when the kernel refuses the program for any reason.
//!
//! Must not: change anything it looks at (the program only reads), print
//! anything (the verifier log travels in `ScanInfo` for the caller), or
//! keep more than the program and link fds open between scans.

mod holders;
mod records;
mod skel;
mod sys;
mod watchset;

pub(crate) use holders::netns_by_stat;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use super::fdscan::{self, Scan};
use crate::error::{Error, Result};
use crate::model::scan::{FallbackReason, ScanChoice, ScanInfo, ScanMethod};
use crate::model::Inode;

/// What one holder scan found, and how.
#[derive(Debug)]
pub struct HolderScan {
    /// Every socket fd of every process, and each one's network namespace.
    pub scan: Scan,
    /// SO_REUSEPORT of sockets, read from their `struct sock` (BPF only).
    pub reuseport: HashMap<Inode, bool>,
    /// The SYN queue of TCP listeners, read from their `struct sock` (BPF only).
    pub syn_queue: HashMap<Inode, u32>,
    /// Every process seen (sorted).
    pub pids: Vec<u32>,
    pub info: ScanInfo,
}

/// What one pass over a watch set found: every process's fds compared
/// with the watched sockets' files, in the kernel.
#[derive(Debug, Default)]
pub struct WatchScan {
    /// The confirmed holders of each watched inode that has any.
    pub found: HashMap<Inode, Vec<(u32, u32)>>,
    /// Processes whose hits could not be confirmed (partly readable).
    pub partial: usize,
    /// SO_REUSEPORT and the SYN queue, as in [`HolderScan`].
    pub reuseport: HashMap<Inode, bool>,
    pub syn_queue: HashMap<Inode, u32>,
    pub duration_us: u64,
}

impl HolderScan {
    /// Confirm the hits a pass keeps (`found`, a subset of `scan.found`)
    /// when they came from the BPF iterator, which reads fd tables without
    /// their lock; returns how many processes could not be confirmed
    /// (partly readable). The /proc scan's hits need nothing more.
    pub fn confirm(&self, proc_root: &Path, found: &mut HashMap<Inode, Vec<(u32, u32)>>) -> usize {
        if self.info.method == ScanMethod::Proc {
            return 0;
        }
        holders::confirm(proc_root, found)
    }
}

/// Finds every (pid, fd) holding wanted socket inodes. Loads the BPF
/// program on first use and keeps it for later scans (`watch`).
pub struct HolderScanner {
    choice: ScanChoice,
    /// Capture the verifier log of a failed load (`--verbose`, `SOCKMAP_BPF_LOG`).
    want_log: bool,
    state: State,
    buf: Vec<u8>,
}

enum State {
    Untried,
    Ready(Loaded),
    Unusable(Fallback),
}

struct Loaded {
    /// Kept alive for `link` (and reused per pid when it is the task_file program).
    _prog: skel::Program,
    link: skel::Link,
    method: ScanMethod,
    /// The task_file program for processes the task walk could not emit
    /// in full (loaded on first need; `Some(None)`: refused).
    per_pid: Option<Option<skel::Program>>,
    /// The watch-set program, loaded on first need (`Some(None)`: refused).
    watcher: Option<Option<Watcher>>,
    /// Reported once, by the scan that follows the load.
    load_us: Option<u64>,
    /// Why the faster program was not used, if it was not.
    detail: Option<String>,
    /// Its verifier log, when asked for; reported once.
    log: Option<String>,
}

#[derive(Clone)]
struct Fallback {
    reason: FallbackReason,
    detail: Option<String>,
    log: Option<String>,
    load_us: Option<u64>,
}

impl Fallback {
    fn new(reason: FallbackReason) -> Self {
        Fallback {
            reason,
            detail: None,
            log: None,
            load_us: None,
        }
    }
}

/// PROC_PID_INIT_INO (include/linux/proc_ns.h): the initial pid namespace.
const INIT_PID_NS: &[u8] = b"pid:[4026531836]";

impl HolderScanner {
    pub fn new(choice: ScanChoice, want_log: bool) -> Self {
        let want_log = want_log
            || std::env::var_os("SOCKMAP_BPF_LOG").is_some_and(|v| !v.is_empty() && v != "0");
        HolderScanner {
            choice,
            want_log,
            state: State::Untried,
            buf: Vec::new(),
        }
    }

    /// Whether scans use BPF (loading the program now if not tried yet).
    pub fn uses_bpf(&mut self, proc_root: &Path) -> bool {
        self.ensure_tried(proc_root);
        matches!(self.state, State::Ready(_))
    }

    /// Every socket fd of every process (not yet confirmed: see
    /// [`HolderScan::confirm`]), with each process's network namespace.
    pub fn scan_all(&mut self, proc_root: &Path) -> Result<HolderScan> {
        self.ensure_tried(proc_root);
        if let State::Ready(loaded) = &mut self.state {
            let start = Instant::now();
            self.buf.clear();
            match loaded.read(&mut self.buf) {
                Ok(proc_pids) => {
                    let task_records = loaded.method == ScanMethod::BpfTask;
                    let found =
                        holders::from_records(proc_root, &self.buf, &proc_pids, task_records);
                    let info = ScanInfo {
                        method: loaded.method,
                        duration_us: us(start),
                        load_us: loaded.load_us.take(),
                        fallback_reason: None,
                        detail: loaded.detail.clone(),
                        verifier_log: loaded.log.take(),
                    };
                    return Ok(HolderScan {
                        scan: found.scan,
                        reuseport: found.reuseport,
                        syn_queue: found.syn_queue,
                        pids: found.pids,
                        info,
                    });
                }
                Err(e) => {
                    let mut f = Fallback::new(FallbackReason::ScanFailed);
                    f.detail = Some(format!("reading the iterator: {e}"));
                    self.state = State::Unusable(f);
                }
            }
        }
        // ensure_tried leaves Ready (returned above) or Unusable.
        let State::Unusable(fallback) = &mut self.state else {
            return Err(Error::Bpf("holder scanner not initialised".into()));
        };
        if self.choice == ScanChoice::Bpf {
            return Err(Error::Bpf(describe(fallback)));
        }
        let start = Instant::now();
        let mut pids = fdscan::list_pids(proc_root).map_err(|e| io_err(proc_root, e))?;
        pids.sort_unstable();
        let scan = fdscan::scan_holders(proc_root, Some(&pids), &|_| true)
            .map_err(|e| io_err(proc_root, e))?;
        let info = ScanInfo {
            method: ScanMethod::Proc,
            duration_us: us(start),
            load_us: fallback.load_us.take(),
            fallback_reason: Some(fallback.reason),
            detail: fallback.detail.clone(),
            verifier_log: fallback.log.take(),
        };
        Ok(HolderScan {
            scan,
            reuseport: HashMap::new(),
            syn_queue: HashMap::new(),
            pids,
            info,
        })
    }

    /// The holders of `inodes` alone, confirmed, from the fd-table walk
    /// with a watch set: the first pass after the set changes reads every
    /// table and finds each socket's file; later ones read only the
    /// tables of `holders` (the pids that held them at the last pass) and
    /// of processes started since the last pass, comparing slots with
    /// those files — a fraction of a full scan. A socket passed to an
    /// older process (SCM_RIGHTS) shows at the next full scan. `None` when this cannot be done
    /// (no BPF, the task_file tier, more than the set holds, or the
    /// kernel refused): the caller scans as before. A watched socket no
    /// process held when the set was written shows no holders until the
    /// set is written again (after the next full scan).
    pub fn watch(
        &mut self,
        proc_root: &Path,
        inodes: &[Inode],
        holders: &[u32],
        reset: bool,
    ) -> Option<WatchScan> {
        let State::Ready(loaded) = &mut self.state else {
            return None;
        };
        if loaded.method != ScanMethod::BpfTask || inodes.is_empty() {
            return None;
        }
        let start = Instant::now();
        let mut want: Vec<u64> = inodes.iter().map(|i| i.0).collect();
        want.sort_unstable();
        want.dedup();
        let watcher = loaded
            .watcher
            .get_or_insert_with(|| Watcher::load().ok())
            .as_mut()?;
        self.buf.clear();
        watcher.read(&want, holders, reset, &mut self.buf).ok()?;
        let proc_pids: Vec<u32> = Vec::new();
        let found = holders::from_records(proc_root, &self.buf, &proc_pids, true);
        let keep = |i: &Inode| want.binary_search(&i.0).is_ok();
        let mut hits: HashMap<Inode, Vec<(u32, u32)>> = found
            .scan
            .found
            .into_iter()
            .filter(|(i, _)| keep(i))
            .collect();
        let partial = found.scan.partial + holders::confirm(proc_root, &mut hits);
        Some(WatchScan {
            found: hits,
            partial,
            reuseport: found
                .reuseport
                .into_iter()
                .filter(|(i, _)| keep(i))
                .collect(),
            syn_queue: found
                .syn_queue
                .into_iter()
                .filter(|(i, _)| keep(i))
                .collect(),
            duration_us: us(start),
        })
    }

    fn ensure_tried(&mut self, proc_root: &Path) {
        if matches!(self.state, State::Untried) {
            self.state = match self.try_load(proc_root) {
                Ok(loaded) => State::Ready(loaded),
                Err(f) => State::Unusable(f),
            };
        }
    }

    fn try_load(&self, proc_root: &Path) -> Result<Loaded, Fallback> {
        let disabled =
            std::env::var_os("SOCKMAP_NO_BPF").is_some_and(|v| !v.is_empty() && v != "0");
        if self.choice == ScanChoice::Proc || (self.choice == ScanChoice::Auto && disabled) {
            return Err(Fallback::new(FallbackReason::Disabled));
        }
        if proc_root != Path::new("/proc") {
            let mut f = Fallback::new(FallbackReason::Disabled);
            f.detail = Some(format!("/proc is read from {}", proc_root.display()));
            return Err(f);
        }
        if !permitted() {
            return Err(Fallback::new(FallbackReason::NotPermitted));
        }
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(Fallback::new(FallbackReason::NoBtf));
        }
        if !initial_pid_namespace(proc_root) {
            return Err(Fallback::new(FallbackReason::PidNamespace));
        }
        let start = Instant::now();
        let mut failed = Vec::new();
        for (skel, method) in [
            (&skel::TASK, ScanMethod::BpfTask),
            (&skel::TASK_FILE, ScanMethod::BpfTaskFile),
        ] {
            let loaded = skel::Program::load(skel).and_then(|p| Ok((p.attach(None)?, p)));
            match loaded {
                Ok((link, prog)) => {
                    let load_us = Some(us(start));
                    let some_failed = !failed.is_empty();
                    return Ok(Loaded {
                        _prog: prog,
                        link,
                        method,
                        per_pid: None,
                        watcher: None,
                        load_us,
                        detail: some_failed.then(|| failed.join("; ")),
                        log: (some_failed && self.want_log).then(verifier_logs).flatten(),
                    });
                }
                Err(e) => failed.push(format!("{}: {e}", skel.name)),
            }
        }
        let load_us = Some(us(start));
        let log = self.want_log.then(verifier_logs).flatten();
        Err(Fallback {
            reason: FallbackReason::LoadFailed,
            detail: Some(failed.join("; ")),
            log,
            load_us,
        })
    }
}

impl Loaded {
    /// Run the iterator into `buf`. A process whose table the task walk
    /// could not emit in full (more sockets than one read of the iterator
    /// holds) is read again by the task_file program scoped to it; the
    /// pids returned are those left for the /proc scan.
    fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Vec<u32>> {
        self.link.read_all(buf)?;
        let mut truncated: Vec<u32> = records::parse(buf)
            .filter(records::Record::is_truncated)
            .map(|r| r.tgid)
            .collect();
        if truncated.is_empty() {
            return Ok(truncated);
        }
        truncated.sort_unstable();
        truncated.dedup();
        let prog = self
            .per_pid
            .get_or_insert_with(|| skel::Program::load(&skel::TASK_FILE).ok());
        let Some(prog) = prog else {
            return Ok(truncated);
        };
        let mut left = Vec::new();
        for pid in truncated {
            let len = buf.len();
            // Whole records only: the task walk's output is a multiple of
            // the record size, and so is each per-pid read.
            if prog
                .attach(Some(pid))
                .map_err(|e| e.source)
                .and_then(|l| l.read_all(buf))
                .is_err()
            {
                buf.truncate(len);
                left.push(pid);
            }
        }
        Ok(left)
    }
}

/// The watch-set program (`bpf/holders_watch.bpf.c`), its maps and the
/// link that runs it over our own process.
struct Watcher {
    prog: skel::Program,
    link: skel::Link,
    /// The inodes the `watch` map holds now, files found (empty: none,
    /// or to be written again).
    watching: Vec<u64>,
    /// A set whose first pass ran out of room: not tried again until it
    /// changes or a reset asks.
    overflows: Option<Vec<u64>>,
    /// When the last complete pass started (CLOCK_MONOTONIC ns).
    since: u64,
}

/// How far back of the last pass's start a pass reads new processes: a
/// fork's start time is stamped before it is linked into the task list,
/// so one preempted in between may have started before that pass began
/// and still be unseen by it.
const SINCE_SLACK_NS: u64 = 1_000_000_000;

impl Watcher {
    fn load() -> Result<Self, skel::LoadError> {
        let prog = skel::Program::load(&skel::WATCH)?;
        let link = prog.attach(Some(std::process::id()))?;
        Ok(Watcher {
            prog,
            link,
            watching: Vec::new(),
            overflows: None,
            since: 0,
        })
    }

    /// One pass over `want` (sorted inodes, at most `watchset::MAX`),
    /// reading the tables of `holders` and of processes started since the
    /// last pass; every table when the set is (re)written (`reset`, or a
    /// new set). A pass that ran out of room or failed is an error, and
    /// the set is written again next time.
    fn read(
        &mut self,
        want: &[u64],
        holders: &[u32],
        reset: bool,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let too_big = || std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        if reset {
            self.overflows = None;
        }
        if self.overflows.as_deref() == Some(want) {
            return Err(too_big());
        }
        let map = |i| {
            self.prog
                .map(i)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let fresh = reset || self.watching != want;
        if fresh {
            let value = watchset::value(want)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            // Forget the old set first: if the write fails, nothing claims it.
            self.watching.clear();
            sys::map_update(map(0)?, &0u32.to_ne_bytes(), &value)?;
        }
        let now = monotonic_ns();
        let since = if fresh {
            0
        } else {
            self.since.saturating_sub(SINCE_SLACK_NS)
        };
        sys::map_update(
            map(1)?,
            &0u32.to_ne_bytes(),
            &watchset::tick(since, holders),
        )?;
        self.link.read_all(buf)?;
        if records::parse(buf).any(|r| r.is_truncated()) {
            // Files found so far may not be all there are: write the set
            // again before any later pass trusts it, and not before a
            // reset or another set (this one does not fit).
            self.overflows = Some(want.to_vec());
            self.watching.clear();
            return Err(too_big());
        }
        self.watching = want.to_vec();
        self.since = now;
        Ok(())
    }
}

/// A fresh load of each program with the verifier log on, for a user who
/// asked why the load failed. Never on the fast path.
fn verifier_logs() -> Option<String> {
    let mut out = String::new();
    for skel in [&skel::TASK, &skel::TASK_FILE] {
        let mut log = vec![0u8; 4 << 20];
        if let Err(e) = skel::load(skel, Some(&mut log)) {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            out.push_str(&format!("--- {} ({e}) ---\n", skel.name));
            out.push_str(&String::from_utf8_lossy(&log[..end]));
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

fn describe(f: &Fallback) -> String {
    let why = match f.reason {
        FallbackReason::Disabled => "disabled (SOCKMAP_NO_BPF is set)",
        FallbackReason::NotPermitted => "needs CAP_BPF and CAP_PERFMON (run as root)",
        FallbackReason::NoBtf => "this kernel has no BTF (/sys/kernel/btf/vmlinux)",
        FallbackReason::PidNamespace => "sockmap runs in a non-initial pid namespace",
        FallbackReason::LoadFailed => "the kernel refused the program",
        FallbackReason::ScanFailed => "the iterator could not be read",
    };
    match &f.detail {
        Some(d) => format!("BPF holder scan not available: {why} ({d})"),
        None => format!("BPF holder scan not available: {why}"),
    }
}

/// CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN, which implies both) in
/// the effective set: what loading a tracing program needs.
fn permitted() -> bool {
    use rustix::thread::{capabilities, CapabilitySet};
    capabilities(None).is_ok_and(|c| {
        c.effective.contains(CapabilitySet::SYS_ADMIN)
            || c.effective
                .contains(CapabilitySet::BPF | CapabilitySet::PERFMON)
    })
}

/// The iterator reports `task->tgid`, the pid in the initial namespace:
/// usable only if we are in it and /proc shows that namespace's pids.
fn initial_pid_namespace(proc_root: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let ours = std::fs::read_link(proc_root.join("self/ns/pid"));
    if !ours.is_ok_and(|l| l.as_os_str().as_bytes() == INIT_PID_NS) {
        return false;
    }
    // One level on NSpid: this /proc belongs to our own pid namespace.
    std::fs::read_to_string(proc_root.join("self/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|v| v.split_whitespace().count() == 1)
    })
}

/// The kernel's CLOCK_MONOTONIC in ns, the clock of `task->start_time`:
/// ours, less the offset of our time namespace (`timens_offsets`), which
/// the kernel's own timestamps do not carry.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let ours = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    u64::try_from(ours - timens_monotonic_offset()).unwrap_or(0)
}

/// The monotonic offset of our time namespace in ns (0 in the initial one,
/// or when the file is missing: kernels before 5.6 have no time namespaces).
fn timens_monotonic_offset() -> i128 {
    static OFFSET: std::sync::OnceLock<i128> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
        parse_timens_offset(&text)
    })
}

/// The `monotonic <secs> <nsecs>` line of `/proc/PID/timens_offsets`.
fn parse_timens_offset(text: &str) -> i128 {
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            if f.next()? != "monotonic" {
                return None;
            }
            let secs: i128 = f.next()?.parse().ok()?;
            let nsecs: i128 = f.next()?.parse().ok()?;
            Some(secs * 1_000_000_000 + nsecs)
        })
        .unwrap_or(0)
}

fn us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timens_offset;

    #[test]
    fn time_namespace_offsets() {
        let initial = "monotonic           0         0\nboottime            0         0\n";
        assert_eq!(parse_timens_offset(initial), 0);
        let moved = "monotonic        -120   5000000\nboottime           30         0\n";
        assert_eq!(parse_timens_offset(moved), -120_000_000_000 + 5_000_000);
        assert_eq!(parse_timens_offset(""), 0);
    }
}
