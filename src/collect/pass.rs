//! One collection pass for a query: sockets from sock_diag in every
//! network namespace in scope, holders from one scan of every process (a
//! BPF iterator as root, else /proc; both also give each process's
//! namespace), SYN-queue request sockets for the listeners' ports, waiting
//! threads and forwarders. Passive: it only reads. (SO_REUSEPORT is read
//! from the socket only by the BPF scan, which reads `sk_reuseport` in the
//! kernel; receiving a copy of a holder's fd through a pidfd would re-tag
//! the socket's net_cls classid and netprio index and hold a reference
//! that keeps a closed listener alive. Otherwise `analyze` infers it from
//! groups.) Every dump goes through the collector's `Source`, and every
//! /proc file it reads is under its `proc_root`: a recorded source over a
//! fake /proc tree runs a whole pass without the kernel.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::bpf::{HolderScan, HolderScanner};
use super::diag::{AttrProblems, STATE_ALL, STATE_CLOSE, STATE_LISTEN, STATE_SYN_RECV};
use super::netns::NsHandle;
use super::nsset::NsSet;
use super::source::Source;
use super::{fdscan, host, process, waiters};
use crate::error::{Error, Result};
use crate::model::netns::{NetnsMap, NetnsScope};
use crate::model::scan::{ScanChoice, ScanOptions};
use crate::model::{
    Family, Holder, Inode, ListenCounters, PathStatus, Proto, RequestSock, Snapshot, Socket,
    UnixName, Vfs, Warning, WarningKind,
};
use crate::target::{NetnsRef, PortFilter, Query, UnixName as TargetUnix, MAX_KERNEL_PORTS};

/// More listener ports than this: dump the SYN queue unfiltered (one walk)
/// rather than build a long filter.
const MAX_FILTER_PORTS: usize = 64;

mod ends;
mod ticks;

pub struct Collector {
    proc_root: PathBuf,
    /// The pids the last holder scan covered (sorted): a later
    /// `update_holders` scans only pids that appeared since.
    known_pids: Vec<u32>,
    ns: NsSet,
    holders: HolderScanner,
}

/// One pass with a fresh collector, in our own network namespace.
pub fn collect(query: &Query) -> Result<Snapshot> {
    Collector::new()?.snapshot(query)
}

/// One pass with a fresh collector over the namespaces in `scope`.
pub fn collect_in(query: &Query, scope: NetnsScope) -> Result<Snapshot> {
    Collector::with_netns(scope)?.snapshot(query)
}

/// One pass over the namespaces in `scope`, holders found as `scan` says.
pub fn collect_with(query: &Query, scope: NetnsScope, scan: ScanOptions) -> Result<Snapshot> {
    let mut c = Collector::with_netns(scope)?;
    c.set_scan(scan);
    c.snapshot(query)
}

impl Collector {
    /// A collector for our own network namespace only.
    pub fn new() -> Result<Self> {
        Self::with_netns(NetnsScope::Own)
    }

    pub fn with_netns(scope: NetnsScope) -> Result<Self> {
        Self::from_source(Source::Live, "/proc", scope)
    }

    /// A collector whose dumps come from `source` and whose /proc is
    /// `proc_root`. Holders are found by the BPF iterator only when both
    /// are the live ones: a recorded source always scans `proc_root`,
    /// and the scanner itself refuses BPF for any other root.
    pub fn from_source(
        source: Source,
        proc_root: impl Into<PathBuf>,
        scope: NetnsScope,
    ) -> Result<Self> {
        let proc_root = proc_root.into();
        let choice = scan_choice(&source, ScanChoice::default());
        Ok(Collector {
            ns: NsSet::new(&proc_root, scope, source)?,
            proc_root,
            known_pids: Vec::new(),
            holders: HolderScanner::new(choice, false),
        })
    }

    /// Find holders as `scan` says (`--scan`, `--verbose`).
    pub fn set_scan(&mut self, scan: ScanOptions) {
        let choice = scan_choice(&self.ns.source, scan.choice);
        self.holders = HolderScanner::new(choice, scan.verbose);
    }

    /// Whether holder scans use the BPF iterator (cheap enough to repeat
    /// often in `watch` and `export`). Loads the program if not tried yet.
    pub fn holders_from_bpf(&mut self) -> bool {
        self.holders.uses_bpf(&self.proc_root)
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Keep each namespace's TcpExt counters at hand (`counters`), for
    /// `watch`; a one-shot pass does not open them.
    pub fn with_counters(mut self) -> Self {
        self.ns.counters = true;
        self
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
        // comm: targets become pid: targets for the processes so named.
        let resolved = super::comm::with_comm_pids(&self.proc_root, query);
        let query = resolved.as_ref().unwrap_or(query);
        let mut warnings = Vec::new();
        let hidden = hidden_processes(&self.proc_root);
        if let Some(opts) = &hidden {
            warnings.push(Warning::new(WarningKind::ProcHidden, 1).detail(opts.clone()));
        }

        // One scan of every process: every socket fd it holds and its
        // network namespace. Sockets are matched to holders after the
        // dumps, so a namespace found here is dumped in the same pass.
        let all = self.scan_all()?;
        let scan = &all.scan;
        if scan.denied > 0 {
            warnings.push(Warning::new(
                WarningKind::ProcessesUnreadable,
                scan.denied as u64,
            ));
        }
        let targets: Vec<&NetnsRef> = query.netns().collect();
        warnings.extend(self.ns.sync(
            &self.proc_root,
            scan.netns.clone(),
            scan.netns_denied,
            &targets,
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
        self.add_forward_ends(&mut sockets, &mut netns, &scan.found, &mut look)?;
        // Namespace by namespace, ours first, each in dump order (as
        // `refresh` lists them, so a tick compares equal).
        let rank: HashMap<u64, usize> = self
            .ns
            .keys_in_order()
            .iter()
            .enumerate()
            .map(|(i, k)| (k.ino, i))
            .collect();
        sockets.sort_by(|a, b| {
            let r = |s: &Socket| {
                rank.get(&netns.socket(s.inode))
                    .copied()
                    .unwrap_or(usize::MAX)
            };
            (r(a), sort_key(a)).cmp(&(r(b), sort_key(b)))
        });

        // Holders of every socket kept, across all processes.
        let want: HashSet<Inode> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|i| i.0 != 0)
            .collect();
        let mut found: HashMap<Inode, Vec<(u32, u32)>> = scan
            .found
            .iter()
            .filter(|(i, _)| want.contains(i))
            .map(|(i, list)| (*i, list.clone()))
            .collect();
        let partial = scan.partial + all.confirm(&self.proc_root, &mut found);
        let holders = process::holders_with_details(&self.proc_root, &found);
        let netns = self.with_holder_netns(netns, &holders);
        if partial > 0 {
            warnings.push(Warning::new(
                WarningKind::ProcessesPartlyReadable,
                partial as u64,
            ));
        }
        let reuseport = kept(&all.reuseport, &want);
        let syn_queue = kept(&all.syn_queue, &want);
        check_paths(&self.proc_root, &mut sockets, &holders);

        let request_socks = self.try_request_socks(&sockets, &syn_queue, &netns, &mut warnings)?;
        let waiters = waiters::find_waiters(&self.proc_root, &holders);
        if waiters.denied > 0 {
            warnings.push(Warning::new(
                WarningKind::WaitersUnreadable,
                waiters.denied as u64,
            ));
        }
        let waiters = waiters.by_inode;
        let forwards = self.forwards(&sockets, &holders, &netns, &mut look);

        Ok(Snapshot {
            sockets,
            holders,
            request_socks,
            waiters,
            reuseport,
            syn_queue,
            host: host::read_host(&self.proc_root),
            warnings,
            netns,
            forwards,
            scan: Some(all.info),
        })
    }

    /// Every socket fd of every process and each process's namespace: the
    /// BPF iterator or the /proc scan (`bpf::HolderScanner` decides).
    fn scan_all(&mut self) -> Result<HolderScan> {
        let all = self.holders.scan_all(&self.proc_root)?;
        self.known_pids.clone_from(&all.pids);
        Ok(all)
    }

    /// Drop holders whose process is gone (one stat of /proc/PID per
    /// holding process): between full passes, a departure shows at once.
    pub fn forget_exited_holders(&self, snap: &mut Snapshot) {
        let mut alive: HashMap<u32, bool> = HashMap::new();
        for list in snap.holders.values_mut() {
            list.retain(|h| {
                *alive
                    .entry(h.pid)
                    .or_insert_with(|| self.proc_root.join(h.pid.to_string()).exists())
            });
        }
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
        let mut attrs = AttrProblems::default();
        let own = self.ns.own;
        for key in self.ns.keys_in_order() {
            let Some(handle) = self.ns.handles.get_mut(&key) else {
                continue;
            };
            let mine = Some(key) == own || own.is_none();
            match dump_ns(handle, query, extra_inodes, warnings, &mut attrs) {
                Ok(found) => {
                    if !mine {
                        map.of_socket
                            .extend(found.iter().map(|s| (s.inode, key.ino)));
                    }
                    out.extend(found);
                }
                Err(e) if mine || e.is_not_recorded() => return Err(e),
                Err(e) => warnings.push(
                    Warning::new(WarningKind::NetnsDumpFailed, 1)
                        .detail(format!("netns {}: {e}", key.ino)),
                ),
            }
        }
        warnings.extend(attrs.warning());
        Ok((out, map))
    }

    /// Request sockets (the SYN queue) on the ports of the listeners given,
    /// from each listener's own namespace; none for the listeners whose
    /// SYN queue was read from the socket (`known`), which spares a walk
    /// of the established hash per family. `None` (not measured) if a
    /// dump in our namespace failed, with a warning.
    pub fn request_socks(
        &mut self,
        sockets: &[Socket],
        known: &HashMap<Inode, u32>,
        netns: &NetnsMap,
        warnings: &mut Vec<Warning>,
    ) -> Option<Vec<RequestSock>> {
        match self.try_request_socks(sockets, known, netns, warnings) {
            Ok(found) => found,
            Err(e) => {
                warnings
                    .push(Warning::new(WarningKind::SynQueueUnmeasured, 1).detail(e.to_string()));
                None
            }
        }
    }

    /// [`Self::request_socks`], but a request a recorded source cannot
    /// answer is an error, not a warning.
    fn try_request_socks(
        &mut self,
        sockets: &[Socket],
        known: &HashMap<Inode, u32>,
        netns: &NetnsMap,
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<Vec<RequestSock>>> {
        let mut out = Vec::new();
        // A port whose listeners were not all read is dumped for all of
        // them: a group's count is never half read, half counted.
        let unread: HashSet<(u64, u16)> = sockets
            .iter()
            .filter(|s| s.is_tcp_listener() && !known.contains_key(&s.inode))
            .map(|s| (netns.socket(s.inode), s.local_port))
            .collect();
        for key in self.ns.keys_in_order() {
            let listeners: Vec<&Socket> = sockets
                .iter()
                .filter(|s| {
                    s.is_tcp_listener()
                        && unread.contains(&(netns.socket(s.inode), s.local_port))
                        && netns.socket(s.inode) == key.ino
                })
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
                Err(e) if e.is_not_recorded() => return Err(e),
                Err(e) => {
                    warnings.push(
                        Warning::new(WarningKind::SynQueueUnmeasured, 1).detail(e.to_string()),
                    );
                    return Ok(None);
                }
            }
        }
        Ok(Some(out))
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
            for (inode, found) in process::holders_with_details(&self.proc_root, &scan.found) {
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
        self.refresh_walk(query, prev, false).map(|r| r.snap)
    }

    /// `refresh`, and with `walk` the holders of the sockets found again
    /// by a BPF watch walk (`watch_scan`), which also reads the TCP
    /// listeners' SYN queues: no request-socket dump for those.
    pub fn refresh_walk(
        &mut self,
        query: &Query,
        prev: &Snapshot,
        walk: bool,
    ) -> Result<Refreshed> {
        let mut warnings = Vec::new();
        // pid: targets select sockets by inode: keep the ones already known.
        let by_process = query.pids().next().is_some() || query.comms().next().is_some();
        // The other ends of forwards were added by the full pass: keep
        // them too, or every tick would look like a change.
        let extra: HashSet<u64> = if by_process || !prev.forwards.is_empty() {
            prev.sockets.iter().map(|s| s.inode.0).collect()
        } else {
            HashSet::new()
        };
        let (mut sockets, mut netns) = self.sockets(query, &extra, &mut warnings)?;
        let same = sockets.len() == prev.sockets.len()
            && sockets
                .iter()
                .zip(&prev.sockets)
                .all(|(a, b)| a.inode == b.inode);
        if !same {
            let snap = self.snapshot(query)?;
            let walked = walk
                && self
                    .watch_scan(&snap.sockets, &snap.holders, true)
                    .is_some();
            return Ok(Refreshed {
                snap,
                full: true,
                walked,
            });
        }
        // The path checks of the last full pass still stand.
        for (s, p) in sockets.iter_mut().zip(&prev.sockets) {
            if let (Some(u), Some(pu)) = (s.unix.as_mut(), p.unix.as_ref()) {
                u.path_status = pu.path_status;
            }
        }
        netns.of_pid = prev.netns.of_pid.clone();
        let scan = if walk {
            self.watch_scan(&sockets, &prev.holders, false)
        } else {
            None
        };
        let syn_queue = scan
            .as_ref()
            .map(|w| w.syn_queue.clone())
            .unwrap_or_default();
        let request_socks = self.try_request_socks(&sockets, &syn_queue, &netns, &mut warnings)?;
        warnings.extend(
            prev.warnings
                .iter()
                .filter(|w| w.kind != WarningKind::SynQueueUnmeasured)
                .cloned(),
        );
        let mut snap = Snapshot {
            sockets,
            request_socks,
            syn_queue,
            warnings,
            netns,
            ..prev.clone()
        };
        let walked = scan.is_some();
        if let Some(w) = scan {
            self.apply_watch(&mut snap, w);
        }
        Ok(Refreshed {
            snap,
            full: false,
            walked,
        })
    }
}

/// What `refresh_walk` did.
pub struct Refreshed {
    pub snap: Snapshot,
    /// The socket set changed: a full pass ran.
    pub full: bool,
    /// Holders come from a BPF watch walk (a full pass's walk primed).
    pub walked: bool,
}

/// The sockets matching `query` (plus those in `extra_inodes`) in one
/// namespace: TCP and UDP in both families, and unix sockets, as far as
/// the query wants each protocol. Every per-namespace dump goes through
/// here.
fn dump_ns(
    handle: &mut NsHandle,
    query: &Query,
    extra_inodes: &HashSet<u64>,
    warnings: &mut Vec<Warning>,
    attrs: &mut AttrProblems,
) -> Result<Vec<Socket>> {
    let all = query.wants_all_states();
    let mut out = Vec::new();
    for proto in [Proto::Tcp, Proto::Udp] {
        if !query.wants(proto) {
            continue;
        }
        // Sockets found by inode (pid: targets) may be on any port.
        let ports = match query.port_filter(proto) {
            PortFilter::Ports(set) if extra_inodes.is_empty() && set.len() <= MAX_KERNEL_PORTS => {
                Some(set.ports().collect::<Vec<u16>>())
            }
            _ => None,
        };
        let states = match (proto, all) {
            (_, true) => STATE_ALL,
            (Proto::Udp, false) => STATE_CLOSE,
            _ => STATE_LISTEN,
        };
        for family in [Family::Inet, Family::Inet6] {
            let mut keep = |e: super::diag::Entry<'_>| {
                let (addr, port) = e.local();
                let inode = e.inode();
                let selected = extra_inodes.contains(&inode.0)
                    || if query.is_empty() {
                        // The overview: UDP sockets that can receive
                        // (bound), not the unbound ones clients hold.
                        all || proto != Proto::Udp || port != 0
                    } else {
                        query.matches_inet(proto, addr, port, inode.0)
                    };
                if selected {
                    let (socket, problem) = e.decode();
                    attrs.note(socket.inode, problem);
                    out.push(socket);
                }
            };
            match handle
                .diag
                .dump(proto, family, states, ports.as_deref(), &mut keep)
            {
                Ok(()) => {}
                Err(e) if e.is_not_recorded() => return Err(e),
                // A host without IPv6 still answers for IPv4: keep that, say so.
                Err(e) if family == Family::Inet6 => warnings
                    .push(Warning::new(WarningKind::Ipv6Unavailable, 1).detail(e.to_string())),
                // No udp_diag module: TCP still works; say so.
                Err(e) if proto == Proto::Udp => {
                    warnings
                        .push(Warning::new(WarningKind::UdpUnavailable, 1).detail(e.to_string()));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    if query.wants(Proto::Unix) {
        let states = if all { STATE_ALL } else { STATE_LISTEN };
        // unix:PATH targets also match the socket file the path leads
        // to now, through a symlink or a rename.
        let resolved: Vec<Vfs> = query
            .unix_names()
            .filter_map(|n| match n {
                TargetUnix::Path(p) => stat_vfs(Path::new(p)),
                TargetUnix::Abstract(_) => None,
            })
            .collect();
        let mut keep = |s: Socket| {
            let u = s.unix.as_ref();
            let raw = u.and_then(|u| u.name.as_ref()).map(UnixName::sun_path);
            let selected = extra_inodes.contains(&s.inode.0)
                || query.is_empty()
                || query.matches_unix(raw.as_deref().unwrap_or_default(), s.inode.0)
                || (query.wants(Proto::Unix)
                    && u.and_then(|u| u.vfs).is_some_and(|v| resolved.contains(&v)));
            if selected {
                out.push(s);
            }
        };
        match handle.diag.dump_unix(states, &mut keep) {
            Ok(problems) => attrs.merge(problems),
            Err(e) if e.is_not_recorded() => return Err(e),
            // No unix_diag module: the inet results still stand.
            Err(e) => {
                warnings.push(Warning::new(WarningKind::UnixUnavailable, 1).detail(e.to_string()))
            }
        }
    }
    out.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(out)
}

/// Request sockets on the listeners' ports, in the listeners' namespace.
fn syn_queue_ns(handle: &mut NsHandle, listeners: &[&Socket]) -> Result<Vec<RequestSock>> {
    let mut ports: Vec<u16> = listeners.iter().map(|s| s.local_port).collect();
    ports.sort_unstable();
    ports.dedup();
    let filter = (ports.len() <= MAX_FILTER_PORTS).then_some(&ports[..]);
    // Each dump walks the whole established hash: ask only the families
    // of the listeners. A request socket takes its listener's family
    // (`inet_reqsk_alloc` copies `sk_family`): an IPv4 client of a
    // dual-stack `[::]` listener is in the AF_INET6 dump, its address
    // v4-mapped.
    let mut out = Vec::new();
    for family in [Family::Inet, Family::Inet6] {
        if !listeners.iter().any(|s| s.family == family) {
            continue;
        }
        let mut keep = |e: super::diag::Entry<'_>| {
            let r = e.request_sock();
            if ports.binary_search(&r.local_port).is_ok() {
                out.push(r);
            }
        };
        // A family with a listener answers: its failure is not "empty".
        handle
            .diag
            .dump(Proto::Tcp, family, STATE_SYN_RECV, filter, &mut keep)?;
    }
    Ok(out)
}

/// A recorded source never scans with BPF: its holders come from its
/// proc root, whatever was asked.
fn scan_choice(source: &Source, asked: ScanChoice) -> ScanChoice {
    if source.is_recorded() {
        ScanChoice::Proc
    } else {
        asked
    }
}

/// The entries of `m` for the inodes in `want`.
fn kept<V: Copy>(m: &HashMap<Inode, V>, want: &HashSet<Inode>) -> HashMap<Inode, V> {
    m.iter()
        .filter(|(i, _)| want.contains(i))
        .map(|(i, v)| (*i, *v))
        .collect()
}

/// TCP, then UDP, then unix; by port, family, address; unix by name.
#[allow(clippy::type_complexity)]
fn sort_key(
    s: &Socket,
) -> (
    Proto,
    u16,
    Family,
    std::net::IpAddr,
    Option<&UnixName>,
    crate::model::TcpState,
    Inode,
) {
    (
        s.proto,
        s.local_port,
        s.family,
        s.local_addr,
        s.unix.as_ref().and_then(|u| u.name.as_ref()),
        s.state,
        s.inode,
    )
}

/// The inode and device a path leads to (following symlinks), if any.
fn stat_vfs(path: &Path) -> Option<Vfs> {
    let st = rustix::fs::stat(path).ok()?;
    Some(Vfs {
        ino: st.st_ino,
        dev: st.st_dev,
    })
}

/// Whether each unix socket's path still leads to it. The path is looked
/// up from a holder's root (`/proc/PID/root`), so a server in another
/// mount namespace (a container) is judged by its own filesystem.
fn check_paths(proc_root: &Path, sockets: &mut [Socket], holders: &HashMap<Inode, Vec<Holder>>) {
    for s in sockets.iter_mut() {
        let inode = s.inode;
        let Some(u) = s.unix.as_mut() else { continue };
        let Some(UnixName::Path(p)) = &u.name else {
            continue;
        };
        let path = Path::new(OsStr::from_bytes(p));
        let rooted = holders
            .get(&inode)
            .and_then(|h| h.first())
            .filter(|_| path.is_absolute())
            .map(|h| {
                proc_root
                    .join(h.pid.to_string())
                    .join("root")
                    .join(path.strip_prefix("/").unwrap_or(path))
            });
        u.path_status = Some(path_status(u.vfs, rooted.as_deref().unwrap_or(path)));
    }
}

/// Compare what `path` leads to now with the socket's own file.
fn path_status(own: Option<Vfs>, path: &Path) -> PathStatus {
    match rustix::fs::stat(path) {
        Ok(st) => match own {
            Some(v) if v.ino == st.st_ino && v.dev == st.st_dev => PathStatus::Bound,
            // The kernel drops the socket's own VFS reference only when
            // the socket closes: a live socket without one is unusual.
            None => PathStatus::Unknown,
            Some(_) => PathStatus::Replaced,
        },
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => PathStatus::Unlinked,
        Err(_) => PathStatus::Unknown,
    }
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
