//! From the iterator's records to what the /proc scan answers: every
//! socket fd of every process, each process's network namespace, and
//! (only the BPF scan can) SO_REUSEPORT of the sockets; then the one
//! `readlinkat` per kept hit that confirms it. Reads /proc only for those
//! confirmations, for processes the iterator could not finish, and for
//! namespaces when the program did not report them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rustix::fs::{statat, AtFlags, CWD};
use rustix::io::Errno;

use super::records::{self, Record};
use crate::collect::fdscan::{self, NsKey, Scan};
use crate::model::Inode;

/// What one pass of the iterator found.
pub struct Found {
    pub scan: Scan,
    /// SO_REUSEPORT of the sockets whose `struct sock` was read.
    pub reuseport: HashMap<Inode, bool>,
    /// The SYN queue of the TCP listeners among them.
    pub syn_queue: HashMap<Inode, u32>,
    /// Every process seen (sorted).
    pub pids: Vec<u32>,
}

/// Sort the records in `buf` into a `Scan` of every socket fd (not yet
/// confirmed). `proc_pids`: processes to read from /proc instead. Without
/// `task_records` (the task_file program) the processes and their
/// namespaces come from /proc.
pub fn from_records(proc_root: &Path, buf: &[u8], proc_pids: &[u32], task_records: bool) -> Found {
    let mut scan = Scan::default();
    let mut reuseport = HashMap::new();
    let mut syn_queue = HashMap::new();
    let mut pids = Vec::new();
    let dev = task_records.then(|| nsfs_dev(proc_root)).flatten();
    for r in records::parse(buf) {
        // A thread's own fd table is not the process's (/proc/PID/fd
        // shows the leader's): leave it out, as the /proc scan does.
        if r.tid != r.tgid || r.is_truncated() {
            continue;
        }
        if r.is_task() {
            pids.push(r.tgid);
            if let (Some(dev), Some(ino)) = (dev, r.netns()) {
                scan.netns.insert(r.tgid, NsKey { dev, ino });
            }
            continue;
        }
        scan.found
            .entry(Inode(r.ino))
            .or_default()
            .push((r.tgid, r.fd));
        if let Some(v) = r.reuseport() {
            reuseport.insert(Inode(r.ino), v);
        }
        if let Some(q) = r.syn_queue() {
            syn_queue.insert(Inode(r.ino), q);
        }
    }
    if !task_records {
        pids = fdscan::list_pids(proc_root).unwrap_or_default();
        let (netns, denied) = netns_by_stat(proc_root, &pids);
        scan.netns = netns;
        scan.netns_denied = denied;
    }
    if !proc_pids.is_empty() {
        if let Ok(more) = fdscan::scan_holders(proc_root, Some(proc_pids), &|_| true) {
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
    pids.sort_unstable();
    pids.dedup();
    scan.scanned = pids.len();
    Found {
        scan,
        reuseport,
        syn_queue,
        pids,
    }
}

/// Keep the hits in `found` that `/proc/PID/fd/FD` confirms: a child
/// forked during the walk that exec'd since, or a table read while its
/// process exited, is dropped. A hit we may not confirm (EACCES: root
/// without CAP_SYS_PTRACE) is dropped too and its process counted, as the
/// /proc scan counts a partly readable process. Returns that count.
pub fn confirm(proc_root: &Path, found: &mut HashMap<Inode, Vec<(u32, u32)>>) -> usize {
    let mut partial = HashSet::new();
    for (inode, list) in found.iter_mut() {
        list.retain(|&(pid, fd)| match holds(proc_root, pid, fd, inode.0) {
            Ok(yes) => yes,
            Err(()) => {
                partial.insert(pid);
                false
            }
        });
    }
    found.retain(|_, list| !list.is_empty());
    partial.len()
}

/// Does `/proc/PID/fd/FD` link to `ino`? `Err` when we may not look.
fn holds(proc_root: &Path, pid: u32, fd: u32, ino: u64) -> Result<bool, ()> {
    let path = proc_root.join(format!("{pid}/fd/{fd}"));
    let mut link = [0u8; 64];
    match rustix::fs::readlinkat_raw(CWD, &path, &mut link[..]) {
        Ok(n) => Ok(fdscan::parse_socket_link(&link[..n.min(link.len())]) == Some(ino)),
        Err(Errno::ACCESS) | Err(Errno::PERM) => Err(()),
        Err(_) => Ok(false),
    }
}

/// The device of nsfs, where every namespace inode lives.
fn nsfs_dev(proc_root: &Path) -> Option<u64> {
    statat(CWD, proc_root.join("self/ns/net"), AtFlags::empty())
        .ok()
        .map(|st| st.st_dev)
}

/// Each process's network namespace by `stat /proc/PID/ns/net`, and how
/// many we may not look at.
pub fn netns_by_stat(proc_root: &Path, pids: &[u32]) -> (HashMap<u32, NsKey>, usize) {
    let mut out = HashMap::with_capacity(pids.len());
    let mut denied = 0;
    for &pid in pids {
        match statat(
            CWD,
            proc_root.join(format!("{pid}/ns/net")),
            AtFlags::empty(),
        ) {
            Ok(st) => {
                out.insert(
                    pid,
                    NsKey {
                        dev: st.st_dev,
                        ino: st.st_ino,
                    },
                );
            }
            Err(Errno::ACCESS) | Err(Errno::PERM) => denied += 1,
            Err(_) => {}
        }
    }
    (out, denied)
}

impl Record {
    /// The namespace a task record reports (none: 0).
    fn netns(&self) -> Option<u64> {
        (self.is_task() && self.ino != 0).then_some(self.ino)
    }
}
