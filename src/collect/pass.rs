//! One collection pass for a query: sockets from sock_diag in every
//! network namespace in scope, holders from one /proc scan (which also
//! reads each process's namespace), SYN-queue request sockets for the
//! listeners' ports, waiting threads and forwarders. Passive: it only
//! reads. (SO_REUSEPORT is not read from the socket: taking a copy of a
//! holder's fd with pidfd_getfd(2) would re-tag the socket's net_cls
//! classid and netprio index and hold a reference that keeps a closed
//! listener alive; `analyze` infers it from groups.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::diag::{STATE_ALL, STATE_LISTEN, STATE_SYN_RECV};
use super::netns::NsHandle;
use super::nsset::{NsSelector, NsSet};
use super::{fdscan, waiters};
use crate::error::{Error, Result};
use crate::model::netns::{NetnsMap, NetnsScope};
use crate::model::{
    Family, Holder, Inode, ListenCounters, RequestSock, Snapshot, Socket, Warning, WarningKind,
};
use crate::target::Query;

/// More listener ports than this: dump the SYN queue unfiltered (one walk)
/// rather than build a long filter.
const MAX_FILTER_PORTS: usize = 64;

mod ends;

pub struct Collector {
    proc_root: PathBuf,
    /// The pids the last holder scan covered (sorted): a later
    /// `update_holders` scans only pids that appeared since.
    known_pids: Vec<u32>,
    ns: NsSet,
}

/// One pass with a fresh collector, in our own network namespace.
pub fn collect(query: &Query) -> Result<Snapshot> {
    Collector::new()?.snapshot(query)
}

/// One pass with a fresh collector over the namespaces in `scope`.
pub fn collect_in(query: &Query, scope: NetnsScope) -> Result<Snapshot> {
    Collector::with_netns(scope)?.snapshot(query)
}

impl Collector {
    /// A collector for our own network namespace only.
    pub fn new() -> Result<Self> {
        Self::with_netns(NetnsScope::Own)
    }

    pub fn with_netns(scope: NetnsScope) -> Result<Self> {
        let proc_root = PathBuf::from("/proc");
        Ok(Collector {
            ns: NsSet::new(&proc_root, scope)?,
            proc_root,
            known_pids: Vec::new(),
        })
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The listen counters of namespace `ns` (nsfs inode), now.
    pub fn counters(&mut self, ns: u64) -> Option<ListenCounters> {
        self.ns
            .handles
            .values_mut()
            .find(|h| h.key.ino == ns)?
            .counters()
    }

    /// Everything for `query`: sockets, holders, queues, waiters, warnings.
    pub fn snapshot(&mut self, query: &Query) -> Result<Snapshot> {
        let mut warnings = Vec::new();
        let hidden = hidden_processes(&self.proc_root);
        if let Some(opts) = &hidden {
            warnings.push(Warning::new(WarningKind::ProcHidden, 1).detail(opts.clone()));
        }

        // One scan of every process: every socket fd it holds and its
        // network namespace. Sockets are matched to holders after the
        // dumps, so a namespace found here is dumped in the same pass.
        let mut all = fdscan::list_pids(&self.proc_root).map_err(|e| io_err(&self.proc_root, e))?;
        all.sort_unstable();
        let scan = fdscan::scan_holders(&self.proc_root, Some(&all), &|_| true)
            .map_err(|e| io_err(&self.proc_root, e))?;
        self.known_pids = all;
        if scan.denied > 0 {
            warnings.push(Warning::new(
                WarningKind::ProcessesUnreadable,
                scan.denied as u64,
            ));
        }
        let extra: Vec<NsSelector> = Vec::new();
        warnings.extend(self.ns.sync(
            &self.proc_root,
            scan.netns.clone(),
            scan.netns_denied,
            &extra,
        )?);

        // pid: targets select sockets by the inodes those processes hold.
        let mut pid_inodes: HashSet<u64> = HashSet::new();
        let pids: Vec<u32> = query.pids().collect();
        for &pid in &pids {
            if self.known_pids.binary_search(&pid).is_err() {
                let kind = if hidden.is_some() {
                    WarningKind::PidNotVisible
                } else {
                    WarningKind::NoSuchProcess
                };
                warnings.push(Warning::pid(kind, pid));
            } else if let Some(k) = scan.netns.get(&pid) {
                if !self.ns.keys_in_order().contains(k) {
                    warnings.push(Warning::pid(WarningKind::OtherNetns, pid));
                }
            }
        }
        for (inode, list) in &scan.found {
            if list.iter().any(|(p, _)| pids.contains(p)) {
                pid_inodes.insert(inode.0);
            }
        }

        let (mut sockets, mut netns) = self.sockets(query, &pid_inodes, &mut warnings)?;
        let mut look = ends::Lookups::default();
        self.add_forward_ends(&mut sockets, &mut netns, &scan.found, &mut look);
        // Namespace by namespace, ours first (a stable sort keeps each
        // namespace's dump order).
        let rank: HashMap<u64, usize> = self
            .ns
            .keys_in_order()
            .iter()
            .enumerate()
            .map(|(i, k)| (k.ino, i))
            .collect();
        sockets.sort_by_key(|s| {
            rank.get(&netns.socket(s.inode))
                .copied()
                .unwrap_or(usize::MAX)
        });

        // Holders of every socket kept, across all processes.
        let want: HashSet<Inode> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|i| i.0 != 0)
            .collect();
        let found: HashMap<Inode, Vec<(u32, u32)>> = scan
            .found
            .into_iter()
            .filter(|(i, _)| want.contains(i))
            .collect();
        let holders = fdscan::holders_with_details(&self.proc_root, &found);
        let netns = self.with_holder_netns(netns, &holders);

        let request_socks = self.request_socks(&sockets, &netns, &mut warnings);
        let waiters = waiters::find_waiters(&self.proc_root, &holders);
        let forwards = self.forwards(&sockets, &holders, &netns, &mut look);

        Ok(Snapshot {
            sockets,
            holders,
            request_socks,
            waiters,
            reuseport: HashMap::new(),
            host: self
                .own_handle()
                .map(|h| h.host.clone())
                .unwrap_or_default(),
            warnings,
            netns,
            forwards,
        })
    }

    fn own_handle(&self) -> Option<&NsHandle> {
        let own = self.ns.own?;
        self.ns.handles.get(&own)
    }

    /// The namespace map of a pass: which namespaces were dumped (labels),
    /// which socket was found where.
    fn netns_map(&self) -> NetnsMap {
        NetnsMap {
            own: self.ns.own_ino(),
            namespaces: self.ns.info.clone(),
            of_socket: HashMap::new(),
            of_pid: HashMap::new(),
        }
    }

    fn with_holder_netns(
        &self,
        mut netns: NetnsMap,
        holders: &HashMap<Inode, Vec<Holder>>,
    ) -> NetnsMap {
        for h in holders.values().flatten() {
            if let Some(k) = self.ns.pid_netns.get(&h.pid) {
                netns.of_pid.insert(h.pid, k.ino);
            }
        }
        netns
    }

    /// The sockets matching `query` (plus those in `extra_inodes`) in every
    /// open namespace, ours first, and which namespace each came from.
    pub fn sockets(
        &mut self,
        query: &Query,
        extra_inodes: &HashSet<u64>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(Vec<Socket>, NetnsMap)> {
        let mut map = self.netns_map();
        let mut out = Vec::new();
        let own = self.ns.own;
        for key in self.ns.keys_in_order() {
            let Some(handle) = self.ns.handles.get_mut(&key) else {
                continue;
            };
            let mine = Some(key) == own || own.is_none();
            match dump_ns(handle, query, extra_inodes, warnings) {
                Ok(found) => {
                    if !mine {
                        map.of_socket
                            .extend(found.iter().map(|s| (s.inode, key.ino)));
                    }
                    out.extend(found);
                }
                Err(e) if mine => return Err(e),
                Err(e) => warnings.push(
                    Warning::new(WarningKind::NetnsDumpFailed, 1)
                        .detail(format!("netns {}: {e}", key.ino)),
                ),
            }
        }
        Ok((out, map))
    }

    /// Request sockets (the SYN queue) on the ports of the listeners given,
    /// from each listener's own namespace. `None` (not measured) if a dump
    /// in our namespace failed, with a warning.
    pub fn request_socks(
        &mut self,
        sockets: &[Socket],
        netns: &NetnsMap,
        warnings: &mut Vec<Warning>,
    ) -> Option<Vec<RequestSock>> {
        let mut out = Vec::new();
        for key in self.ns.keys_in_order() {
            let listeners: Vec<&Socket> = sockets
                .iter()
                .filter(|s| s.is_listener() && netns.socket(s.inode) == key.ino)
                .collect();
            if listeners.is_empty() {
                continue;
            }
            let Some(handle) = self.ns.handles.get_mut(&key) else {
                continue;
            };
            match syn_queue_ns(handle, &listeners) {
                Ok(mut found) => {
                    for r in &mut found {
                        r.netns = key.ino;
                    }
                    out.extend(found)
                }
                Err(e) => {
                    warnings.push(
                        Warning::new(WarningKind::SynQueueUnmeasured, 1).detail(e.to_string()),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Bring `snap`'s holders up to date cheaply: scan only the processes
    /// that appeared since the last scan (a holder's fork shows up here)
    /// and drop holders whose process is gone. A socket passed to an
    /// older process (SCM_RIGHTS) waits for the next full `snapshot`.
    pub fn update_holders(&mut self, snap: &mut Snapshot) -> Result<()> {
        let mut all = fdscan::list_pids(&self.proc_root).map_err(|e| io_err(&self.proc_root, e))?;
        all.sort_unstable();
        let new: Vec<u32> = all
            .iter()
            .copied()
            .filter(|p| self.known_pids.binary_search(p).is_err())
            .collect();
        let want: HashSet<u64> = snap
            .sockets
            .iter()
            .map(|s| s.inode.0)
            .filter(|i| *i != 0)
            .collect();
        for list in snap.holders.values_mut() {
            list.retain(|h| all.binary_search(&h.pid).is_ok());
        }
        if !new.is_empty() && !want.is_empty() {
            let scan = fdscan::scan_holders(&self.proc_root, Some(&new), &|i| want.contains(&i))
                .map_err(|e| io_err(&self.proc_root, e))?;
            for (pid, k) in &scan.netns {
                self.ns.pid_netns.insert(*pid, *k);
            }
            for (inode, found) in fdscan::holders_with_details(&self.proc_root, &scan.found) {
                for h in &found {
                    if let Some(k) = scan.netns.get(&h.pid) {
                        snap.netns.of_pid.insert(h.pid, k.ino);
                    }
                }
                let list = snap.holders.entry(inode).or_default();
                list.extend(found);
                list.sort_by_key(|h| (h.pid, h.fd));
                list.dedup();
            }
        }
        self.known_pids = all;
        Ok(())
    }

    /// Sockets and SYN queue only, holders carried over from `prev` while
    /// the set of inodes is unchanged — what `watch` does every tick.
    pub fn refresh(&mut self, query: &Query, prev: &Snapshot) -> Result<Snapshot> {
        let mut warnings = Vec::new();
        // pid: targets select sockets by inode: keep the ones already known.
        let extra: HashSet<u64> = if query.pids().next().is_some() {
            prev.sockets.iter().map(|s| s.inode.0).collect()
        } else {
            HashSet::new()
        };
        let (sockets, mut netns) = self.sockets(query, &extra, &mut warnings)?;
        let same = sockets.len() == prev.sockets.len()
            && sockets
                .iter()
                .zip(&prev.sockets)
                .all(|(a, b)| a.inode == b.inode);
        if !same {
            return self.snapshot(query);
        }
        netns.of_pid = prev.netns.of_pid.clone();
        let request_socks = self.request_socks(&sockets, &netns, &mut warnings);
        warnings.extend(
            prev.warnings
                .iter()
                .filter(|w| w.kind != WarningKind::SynQueueUnmeasured)
                .cloned(),
        );
        Ok(Snapshot {
            sockets,
            request_socks,
            warnings,
            netns,
            ..prev.clone()
        })
    }
}

/// The TCP sockets matching `query` in one namespace: the one function
/// every per-namespace dump goes through.
fn dump_ns(
    handle: &mut NsHandle,
    query: &Query,
    extra_inodes: &HashSet<u64>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Socket>> {
    let states = if query.wants_all_states() {
        STATE_ALL
    } else {
        STATE_LISTEN
    };
    let ports = query.kernel_ports();
    let mut out = Vec::new();
    for family in [Family::Inet, Family::Inet6] {
        let mut keep = |e: super::diag::Entry<'_>| {
            let (addr, port) = e.local();
            let inode = e.inode();
            let selected = query.is_empty()
                || query.matches_local(addr, port, inode.0)
                || extra_inodes.contains(&inode.0);
            if selected {
                out.push(e.into_socket());
            }
        };
        match handle
            .diag
            .dump(family, states, ports.as_deref(), &mut keep)
        {
            Ok(()) => {}
            // A host without IPv6 still answers for IPv4: keep that, say so.
            Err(e) if family == Family::Inet6 => {
                warnings.push(Warning::new(WarningKind::Ipv6Unavailable, 1).detail(e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| {
        (a.local_port, a.family, a.local_addr, a.state, a.inode).cmp(&(
            b.local_port,
            b.family,
            b.local_addr,
            b.state,
            b.inode,
        ))
    });
    Ok(out)
}

/// Request sockets on the listeners' ports, in the listeners' namespace.
fn syn_queue_ns(handle: &mut NsHandle, listeners: &[&Socket]) -> Result<Vec<RequestSock>> {
    let mut ports: Vec<u16> = listeners.iter().map(|s| s.local_port).collect();
    ports.sort_unstable();
    ports.dedup();
    let filter = (ports.len() <= MAX_FILTER_PORTS).then_some(&ports[..]);
    // Each dump walks the whole established hash: skip a family no
    // listener can take connections for. IPv4 request sockets also
    // belong to dual-stack `[::]` listeners.
    let want_v4 = listeners
        .iter()
        .any(|s| s.family == Family::Inet || s.local_addr.is_unspecified());
    let want_v6 = listeners.iter().any(|s| s.family == Family::Inet6);
    let families = [(Family::Inet, want_v4), (Family::Inet6, want_v6)];
    let mut out = Vec::new();
    for family in families.iter().filter(|(_, w)| *w).map(|(f, _)| *f) {
        let mut keep = |e: super::diag::Entry<'_>| {
            let r = e.request_sock();
            if ports.binary_search(&r.local_port).is_ok() {
                out.push(r);
            }
        };
        if let Err(e) = handle.diag.dump(family, STATE_SYN_RECV, filter, &mut keep) {
            if family == Family::Inet {
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The options that hide processes, when the proc mount at `proc_root`
/// has any (`hidepid=1|2|invisible|noaccess`, `subset=pid`): other users'
/// processes are then missing from /proc rather than denied.
fn hidden_processes(proc_root: &Path) -> Option<String> {
    let info = std::fs::read(proc_root.join("self/mountinfo")).ok()?;
    let root = std::fs::canonicalize(proc_root).ok()?;
    super::mountinfo::proc_hiding_options(&info, root.as_os_str().as_encoded_bytes())
}
