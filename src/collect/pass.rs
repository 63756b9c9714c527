//! One collection pass for a query: sockets from sock_diag, holders from
//! /proc, SYN-queue request sockets for the listeners' ports and waiting
//! threads. Passive: it only reads. (SO_REUSEPORT is not read from the
//! socket: taking a copy of a holder's fd with pidfd_getfd(2) would re-tag
//! the socket's net_cls classid and netprio index and hold a reference
//! that keeps a closed listener alive; `analyze` infers it from groups.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::bpf::{HolderScan, HolderScanner};
use super::diag::{STATE_ALL, STATE_CLOSE, STATE_LISTEN, STATE_SYN_RECV};
use super::netlink::DiagSocket;
use super::{fdscan, host, process, waiters};
use crate::error::{Error, Result};
use crate::model::scan::ScanOptions;
use crate::model::{
    Family, Holder, Inode, PathStatus, Proto, RequestSock, Snapshot, Socket, UnixName, Vfs,
    Warning, WarningKind,
};
use crate::target::{PortFilter, Query, UnixName as TargetUnix, MAX_KERNEL_PORTS};

/// More listener ports than this: dump the SYN queue unfiltered (one walk)
/// rather than build a long filter.
const MAX_FILTER_PORTS: usize = 64;

pub struct Collector {
    diag: DiagSocket,
    proc_root: PathBuf,
    /// The pids the last holder scan covered (sorted): a later
    /// `update_holders` scans only pids that appeared since.
    known_pids: Vec<u32>,
    holders: HolderScanner,
}

/// One pass with a fresh collector.
pub fn collect(query: &Query) -> Result<Snapshot> {
    Collector::new()?.snapshot(query)
}

/// One pass, holders found the way `scan` says.
pub fn collect_with(query: &Query, scan: ScanOptions) -> Result<Snapshot> {
    Collector::with_scan(scan)?.snapshot(query)
}

impl Collector {
    pub fn new() -> Result<Self> {
        Self::with_scan(ScanOptions::default())
    }

    pub fn with_scan(scan: ScanOptions) -> Result<Self> {
        Ok(Collector {
            diag: DiagSocket::open()?,
            proc_root: PathBuf::from("/proc"),
            known_pids: Vec::new(),
            holders: HolderScanner::new(scan.choice, scan.verbose),
        })
    }

    /// Whether holder scans use the BPF iterator (cheap enough to repeat
    /// every `watch` tick). Loads the program if not tried yet.
    pub fn holders_from_bpf(&mut self) -> bool {
        self.holders.uses_bpf(&self.proc_root)
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
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

        // pid: targets first — their socket inodes select sockets below.
        let mut pid_inodes: HashSet<u64> = HashSet::new();
        // Processes whose fds could be listed but not all read; the full
        // scan below covers the pid targets again and replaces this.
        let mut partial = 0;
        let pids: Vec<u32> = query.pids().collect();
        if !pids.is_empty() {
            for &pid in &pids {
                if !self.proc_root.join(pid.to_string()).exists() {
                    let kind = if hidden.is_some() {
                        WarningKind::PidNotVisible
                    } else {
                        WarningKind::NoSuchProcess
                    };
                    warnings.push(Warning::pid(kind, pid));
                } else if other_netns(&self.proc_root, pid) {
                    warnings.push(Warning::pid(WarningKind::OtherNetns, pid));
                }
            }
            let scan = fdscan::scan_holders(&self.proc_root, Some(&pids), &|_| true)
                .map_err(|e| io_err(&self.proc_root, e))?;
            if scan.denied > 0 {
                warnings.push(Warning::new(
                    WarningKind::ProcessesUnreadable,
                    scan.denied as u64,
                ));
            }
            partial = scan.partial;
            pid_inodes.extend(scan.found.keys().map(|i| i.0));
        }

        let mut sockets = self.sockets(query, &pid_inodes, &mut warnings)?;

        // Holders of every socket kept, across all processes.
        let want: HashSet<u64> = sockets
            .iter()
            .map(|s| s.inode.0)
            .filter(|i| *i != 0)
            .collect();
        let mut holders = HashMap::new();
        // SO_REUSEPORT as the BPF scan read it from the sockets themselves.
        let mut reuseport = HashMap::new();
        let mut scan_info = None;
        if !want.is_empty() {
            let found = self.scan_holders(&want)?;
            if found.scan.denied > 0 {
                warnings.push(Warning::new(
                    WarningKind::ProcessesUnreadable,
                    found.scan.denied as u64,
                ));
            }
            partial = found.scan.partial;
            holders = process::holders_with_details(&self.proc_root, &found.scan.found);
            reuseport = found.reuseport;
            scan_info = Some(found.info);
        }
        if partial > 0 {
            warnings.push(Warning::new(
                WarningKind::ProcessesPartlyReadable,
                partial as u64,
            ));
        }

        check_paths(&self.proc_root, &mut sockets, &holders);
        let request_socks = self.request_socks(&sockets, &mut warnings);
        let waiters = waiters::find_waiters(&self.proc_root, &holders);
        if waiters.denied > 0 {
            warnings.push(Warning::new(
                WarningKind::WaitersUnreadable,
                waiters.denied as u64,
            ));
        }
        let waiters = waiters.by_inode;

        Ok(Snapshot {
            sockets,
            holders,
            request_socks,
            waiters,
            reuseport,
            host: host::read_host(&self.proc_root),
            warnings,
            scan: scan_info,
        })
    }

    /// Holders of the `want` inodes in every process: the BPF iterator
    /// or the /proc scan (`bpf::HolderScanner` decides).
    fn scan_holders(&mut self, want: &HashSet<u64>) -> Result<HolderScan> {
        let found = self.holders.scan(&self.proc_root, &|i| want.contains(&i))?;
        if let Some(pids) = &found.pids {
            self.known_pids.clone_from(pids);
        }
        Ok(found)
    }

    /// The sockets matching `query` (plus those in `extra_inodes`): TCP and
    /// UDP in both families, and unix sockets, as far as the query wants
    /// each protocol.
    pub fn sockets(
        &mut self,
        query: &Query,
        extra_inodes: &HashSet<u64>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<Socket>> {
        let all = query.wants_all_states();
        let mut out = Vec::new();
        for proto in [Proto::Tcp, Proto::Udp] {
            if !query.wants(proto) {
                continue;
            }
            // Sockets found by inode (pid: targets) may be on any port.
            let ports = match query.port_filter(proto) {
                PortFilter::Ports(set)
                    if extra_inodes.is_empty() && set.len() <= MAX_KERNEL_PORTS =>
                {
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
                        out.push(e.into_socket());
                    }
                };
                match self
                    .diag
                    .dump(proto, family, states, ports.as_deref(), &mut keep)
                {
                    Ok(()) => {}
                    // A host without IPv6 still answers for IPv4: keep that, say so.
                    Err(e) if family == Family::Inet6 => warnings
                        .push(Warning::new(WarningKind::Ipv6Unavailable, 1).detail(e.to_string())),
                    // No udp_diag module: TCP still works; say so.
                    Err(e) if proto == Proto::Udp => {
                        warnings.push(
                            Warning::new(WarningKind::UdpUnavailable, 1).detail(e.to_string()),
                        );
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
            if let Err(e) = self.diag.dump_unix(states, &mut keep) {
                // No unix_diag module: the inet results still stand.
                warnings.push(Warning::new(WarningKind::UnixUnavailable, 1).detail(e.to_string()));
            }
        }
        out.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        Ok(out)
    }

    /// Request sockets (the SYN queue) on the ports of the listeners given.
    /// `None` (not measured) if the dump failed, with a warning.
    pub fn request_socks(
        &mut self,
        sockets: &[Socket],
        warnings: &mut Vec<Warning>,
    ) -> Option<Vec<RequestSock>> {
        let mut ports: Vec<u16> = sockets
            .iter()
            .filter(|s| s.is_tcp_listener())
            .map(|s| s.local_port)
            .collect();
        if ports.is_empty() {
            return Some(Vec::new());
        }
        ports.sort_unstable();
        ports.dedup();
        let filter = (ports.len() <= MAX_FILTER_PORTS).then_some(&ports[..]);
        // Each dump walks the whole established hash: skip a family no
        // listener can take connections for. IPv4 request sockets also
        // belong to dual-stack `[::]` listeners.
        let listeners = || sockets.iter().filter(|s| s.is_tcp_listener());
        let want_v4 =
            listeners().any(|s| s.family == Family::Inet || s.local_addr.is_unspecified());
        let want_v6 = listeners().any(|s| s.family == Family::Inet6);
        let families = [(Family::Inet, want_v4), (Family::Inet6, want_v6)];
        let mut out = Vec::new();
        for family in families.iter().filter(|(_, w)| *w).map(|(f, _)| *f) {
            let mut keep = |e: super::diag::Entry<'_>| {
                let r = e.request_sock();
                if ports.binary_search(&r.local_port).is_ok() {
                    out.push(r);
                }
            };
            if let Err(e) = self
                .diag
                .dump(Proto::Tcp, family, STATE_SYN_RECV, filter, &mut keep)
            {
                if family == Family::Inet {
                    warnings.push(
                        Warning::new(WarningKind::SynQueueUnmeasured, 1).detail(e.to_string()),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Drop holders whose process is gone (one stat of /proc/PID per
    /// holding process): between full scans, a departure shows at once.
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
            for (inode, found) in process::holders_with_details(&self.proc_root, &scan.found) {
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
        let by_process = query.pids().next().is_some() || query.comms().next().is_some();
        let extra: HashSet<u64> = if by_process {
            prev.sockets.iter().map(|s| s.inode.0).collect()
        } else {
            HashSet::new()
        };
        let mut sockets = self.sockets(query, &extra, &mut warnings)?;
        let same = sockets.len() == prev.sockets.len()
            && sockets
                .iter()
                .zip(&prev.sockets)
                .all(|(a, b)| a.inode == b.inode);
        if !same {
            return self.snapshot(query);
        }
        // The path checks of the last full pass still stand.
        for (s, p) in sockets.iter_mut().zip(&prev.sockets) {
            if let (Some(u), Some(pu)) = (s.unix.as_mut(), p.unix.as_ref()) {
                u.path_status = pu.path_status;
            }
        }
        let request_socks = self.request_socks(&sockets, &mut warnings);
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
            ..prev.clone()
        })
    }
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

fn other_netns(proc_root: &Path, pid: u32) -> bool {
    let theirs = std::fs::read_link(proc_root.join(format!("{pid}/ns/net")));
    let ours = std::fs::read_link(proc_root.join("self/ns/net"));
    matches!((theirs, ours), (Ok(a), Ok(b)) if a != b)
}

/// The options that hide processes, when the proc mount at `proc_root`
/// has any (`hidepid=1|2|invisible|noaccess`, `subset=pid`): other users'
/// processes are then missing from /proc rather than denied.
fn hidden_processes(proc_root: &Path) -> Option<String> {
    let info = std::fs::read(proc_root.join("self/mountinfo")).ok()?;
    let root = std::fs::canonicalize(proc_root).ok()?;
    super::mountinfo::proc_hiding_options(&info, root.as_os_str().as_encoded_bytes())
}
