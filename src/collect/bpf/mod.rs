//! Holders from a BPF iterator, with the /proc scan as the fallback.
//!
//! As root on a kernel with BTF, an iterator program (`bpf/*.bpf.c`, built
//! ahead of time into the light-skeleton blobs under `bpf/gen/`) walks
//! every fd table in the kernel and emits (tgid, fd, socket inode,
//! SO_REUSEPORT) for each socket fd: one read instead of a `readlinkat`
//! per fd of every process. Each hit on a wanted inode is then confirmed
//! with one `readlinkat(/proc/PID/fd/FD)`, which drops children caught
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

mod records;
mod skel;
mod sys;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use super::fdscan::{self, Scan};
use crate::error::{Error, Result};
use crate::model::scan::{FallbackReason, ScanChoice, ScanInfo, ScanMethod};
use crate::model::Inode;

/// What one holder scan found, and how.
#[derive(Debug)]
pub struct HolderScan {
    pub scan: Scan,
    /// SO_REUSEPORT of wanted sockets, read from their `struct sock` (BPF only).
    pub reuseport: HashMap<Inode, bool>,
    /// The pids the /proc scan listed (sorted), when it ran.
    pub pids: Option<Vec<u32>>,
    pub info: ScanInfo,
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
    /// Reported once, by the scan that follows the load.
    load_ms: Option<f64>,
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
    load_ms: Option<f64>,
}

impl Fallback {
    fn new(reason: FallbackReason) -> Self {
        Fallback {
            reason,
            detail: None,
            log: None,
            load_ms: None,
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

    /// Every (pid, fd) holding an inode `want` accepts, across all processes.
    pub fn scan(
        &mut self,
        proc_root: &Path,
        want: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<HolderScan> {
        self.ensure_tried(proc_root);
        if let State::Ready(loaded) = &mut self.state {
            let start = Instant::now();
            self.buf.clear();
            match loaded.read(&mut self.buf) {
                Ok(proc_pids) => {
                    let (scan, reuseport) = confirm(proc_root, &self.buf, &proc_pids, want);
                    let info = ScanInfo {
                        method: loaded.method,
                        duration_ms: ms(start),
                        load_ms: loaded.load_ms.take(),
                        fallback_reason: None,
                        detail: loaded.detail.clone(),
                        verifier_log: loaded.log.take(),
                    };
                    return Ok(HolderScan {
                        scan,
                        reuseport,
                        pids: None,
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
        let scan =
            fdscan::scan_holders(proc_root, Some(&pids), want).map_err(|e| io_err(proc_root, e))?;
        let info = ScanInfo {
            method: ScanMethod::Proc,
            duration_ms: ms(start),
            load_ms: fallback.load_ms.take(),
            fallback_reason: Some(fallback.reason),
            detail: fallback.detail.clone(),
            verifier_log: fallback.log.take(),
        };
        Ok(HolderScan {
            scan,
            reuseport: HashMap::new(),
            pids: Some(pids),
            info,
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
                    let load_ms = Some(ms(start));
                    let some_failed = !failed.is_empty();
                    return Ok(Loaded {
                        _prog: prog,
                        link,
                        method,
                        per_pid: None,
                        load_ms,
                        detail: some_failed.then(|| failed.join("; ")),
                        log: (some_failed && self.want_log).then(verifier_logs).flatten(),
                    });
                }
                Err(e) => failed.push(format!("{}: {e}", skel.name)),
            }
        }
        let load_ms = Some(ms(start));
        let log = self.want_log.then(verifier_logs).flatten();
        Err(Fallback {
            reason: FallbackReason::LoadFailed,
            detail: Some(failed.join("; ")),
            log,
            load_ms,
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

/// Keep the records on wanted inodes that `/proc/PID/fd/FD` confirms;
/// scan `proc_pids` the /proc way. A hit we may not confirm (EACCES: root
/// without CAP_SYS_PTRACE) is left out and its process counted as partly
/// readable, as the /proc scan counts it.
fn confirm(
    proc_root: &Path,
    buf: &[u8],
    proc_pids: &[u32],
    want: &(dyn Fn(u64) -> bool + Sync),
) -> (Scan, HashMap<Inode, bool>) {
    let mut scan = Scan::default();
    let mut reuseport = HashMap::new();
    let mut seen = HashSet::new();
    let mut partial = HashSet::new();
    for r in records::parse(buf) {
        seen.insert(r.tgid);
        if r.is_truncated() || !want(r.ino) {
            continue;
        }
        match holds(proc_root, &r) {
            Ok(true) => {
                scan.found
                    .entry(Inode(r.ino))
                    .or_default()
                    .push((r.tgid, r.fd));
                if let Some(v) = r.reuseport() {
                    reuseport.insert(Inode(r.ino), v);
                }
            }
            Ok(false) => {}
            Err(()) => {
                partial.insert(r.tgid);
            }
        }
    }
    if !proc_pids.is_empty() {
        if let Ok(more) = fdscan::scan_holders(proc_root, Some(proc_pids), want) {
            scan.denied += more.denied;
            scan.partial += more.partial;
            for (inode, mut list) in more.found {
                scan.found.entry(inode).or_default().append(&mut list);
            }
        }
    }
    for list in scan.found.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    scan.partial += partial.len();
    scan.scanned = seen.len();
    (scan, reuseport)
}

/// Does `/proc/TGID/fd/FD` (or the thread's own table) link to the
/// record's socket? `Err` when we may not look.
fn holds(proc_root: &Path, r: &records::Record) -> Result<bool, ()> {
    let path = if r.tid == r.tgid || r.tid == 0 {
        proc_root.join(format!("{}/fd/{}", r.tgid, r.fd))
    } else {
        proc_root.join(format!("{}/task/{}/fd/{}", r.tgid, r.tid, r.fd))
    };
    let mut link = [0u8; 64];
    match rustix::fs::readlinkat_raw(rustix::fs::CWD, &path, &mut link[..]) {
        Ok(n) => Ok(fdscan::parse_socket_link(&link[..n.min(link.len())]) == Some(r.ino)),
        Err(rustix::io::Errno::ACCESS) | Err(rustix::io::Errno::PERM) => Err(()),
        Err(_) => Ok(false),
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
