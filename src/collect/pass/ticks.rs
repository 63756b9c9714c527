//! The ticks of `watch` and `export` with the BPF holder scan: the
//! holders of the sockets a tick shows, rescanned every tick by one walk
//! of every process's fd table in the kernel with a watch set
//! (`bpf::HolderScanner::watch`), which also reads each listener's SYN
//! queue so the tick needs no request-socket dump for it.
//!
//! Owns: turning a watch walk into the snapshot's holders (details kept
//! for processes already known, read for new ones). Must not: change
//! sockets, queues or warnings other than the ones it measured.

use std::collections::HashMap;

use super::Collector;
use crate::collect::bpf::{netns_by_stat, WatchScan};
use crate::collect::process;
use crate::model::{Holder, Inode, Snapshot, Socket, Warning, WarningKind};

impl Collector {
    /// One walk over the holders of `sockets` (see the module doc), whose
    /// holders at the last pass were `prev`. `reset` (after a full pass)
    /// finds every socket's file afresh. `None` when the BPF walk cannot
    /// be used: the caller scans as it would without it.
    pub fn watch_scan(
        &mut self,
        sockets: &[Socket],
        prev: &HashMap<Inode, Vec<Holder>>,
        reset: bool,
    ) -> Option<WatchScan> {
        let inodes: Vec<Inode> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|i| i.0 != 0)
            .collect();
        let mut pids: Vec<u32> = prev.values().flatten().map(|h| h.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        self.holders.watch(&self.proc_root, &inodes, &pids, reset)
    }

    /// Make `w` (a walk over the same sockets) `snap`'s holders: every
    /// holder now, each with the details its process had when first
    /// seen, new processes read from /proc. SO_REUSEPORT as read.
    pub fn apply_watch(&mut self, snap: &mut Snapshot, w: WatchScan) {
        let mut known: HashMap<u32, Holder> = HashMap::new();
        for h in snap.holders.values().flatten() {
            known.entry(h.pid).or_insert_with(|| h.clone());
        }
        let mut holders: HashMap<Inode, Vec<Holder>> = HashMap::new();
        let mut new: HashMap<Inode, Vec<(u32, u32)>> = HashMap::new();
        for (inode, list) in w.found {
            for (pid, fd) in list {
                match known.get(&pid) {
                    Some(h) => holders
                        .entry(inode)
                        .or_default()
                        .push(Holder { fd, ..h.clone() }),
                    None => new.entry(inode).or_default().push((pid, fd)),
                }
            }
        }
        if !new.is_empty() {
            let found = process::holders_with_details(&self.proc_root, &new);
            let pids: Vec<u32> = found.values().flatten().map(|h| h.pid).collect();
            for (pid, k) in netns_by_stat(&self.proc_root, &pids).0 {
                self.ns.pid_netns.insert(pid, k);
                snap.netns.of_pid.insert(pid, k.ino);
            }
            for (inode, list) in found {
                holders.entry(inode).or_default().extend(list);
            }
        }
        for list in holders.values_mut() {
            list.sort_by_key(|h| (h.pid, h.fd));
            list.dedup();
        }
        snap.holders = holders;
        snap.reuseport.extend(w.reuseport);
        // Processes this walk did not read keep what the last pass said.
        if w.partial > 0 {
            snap.warnings
                .retain(|x| x.kind != WarningKind::ProcessesPartlyReadable);
            snap.warnings.push(Warning::new(
                WarningKind::ProcessesPartlyReadable,
                w.partial as u64,
            ));
        }
    }
}
