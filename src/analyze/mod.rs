//! Joins what `collect` saw into the report the user reads: each socket
//! with its holders, queues and waiters; listeners grouped by address:port
//! and classified (single / shared by fork / SO_REUSEPORT group), with one
//! plain sentence each. Pure: takes a `Snapshot`, returns a `Report`.

pub mod check;
mod forwards;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};

use crate::model::netns::NetnsMap;
use crate::model::report::{
    AcceptQueue, Group, GroupKind, Report, SocketReport, SynQueue, SynScope, SCHEMA,
};
use crate::model::{
    Holder, Inode, PathStatus, Proto, RequestSock, Snapshot, SockType, Socket, UnixName, WaitHow,
};
use crate::target::Query;

/// A listener's identity for grouping. Inet: sockets sharing one (proto,
/// address, port, device) exist only through SO_REUSEPORT (UDP: or
/// SO_REUSEADDR). Unix: one group per socket (a path names one socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
/// The network namespace comes first: two containers each listening on
/// :80 are two unrelated listeners.
enum GroupKey {
    Inet(u64, Proto, IpAddr, u16, u32),
    Unix(Inode),
}

fn key(ns: &NetnsMap, s: &Socket) -> GroupKey {
    match s.proto {
        Proto::Unix => GroupKey::Unix(s.inode),
        p => GroupKey::Inet(ns.socket(s.inode), p, s.local_addr, s.local_port, s.ifindex),
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`, so IPv4 traffic to dual-stack listeners compares.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// Which listener group would own this request socket: the exact local
/// address first, then the wildcard of its family, then the IPv6 wildcard
/// (dual-stack) — the order the kernel's lookup prefers.
fn owner(ns: &NetnsMap, r: &RequestSock, listeners: &[&Socket]) -> Option<GroupKey> {
    let addr = canonical(r.local_addr);
    // A request socket's namespace is its dump's; 0 means ours.
    let r_ns = if r.netns == 0 { ns.own } else { r.netns };
    let on_port = || {
        listeners.iter().filter(move |l| {
            l.is_tcp_listener() && l.local_port == r.local_port && ns.socket(l.inode) == r_ns
        })
    };
    on_port()
        .find(|l| canonical(l.local_addr) == addr)
        .or_else(|| {
            on_port()
                .find(|l| l.local_addr.is_unspecified() && l.local_addr.is_ipv4() == addr.is_ipv4())
        })
        .or_else(|| on_port().find(|l| l.local_addr == IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
        .map(|l| key(ns, l))
}

fn socket_report(
    s: &Socket,
    snap: &Snapshot,
    group_size: usize,
    syn: Option<&HashMap<GroupKey, u32>>,
    syn_read: bool,
) -> SocketReport {
    let listener = s.is_listener();
    let ns = &snap.netns;
    let sock_ns = ns.socket(s.inode);
    // somaxconn is per namespace.
    let somaxconn = ns
        .namespaces
        .get(&sock_ns)
        .map_or(snap.host.somaxconn, |i| i.somaxconn);
    let queue_listener = listener && s.proto != Proto::Udp;
    let inet = s.proto != Proto::Unix;
    let connected = !listener && inet && s.remote_port != 0;
    let reuseport = snap
        .reuseport
        .get(&s.inode)
        .copied()
        // Two TCP listeners on one address:port exist only through
        // SO_REUSEPORT; UDP sockets can share one with SO_REUSEADDR too.
        .or((s.proto == Proto::Tcp && listener && group_size > 1).then_some(true));
    let unix = s.unix.as_ref();
    SocketReport {
        inode: s.inode,
        cookie: s.cookie,
        proto: s.proto,
        sock_type: match (s.proto, unix) {
            (Proto::Tcp, _) => SockType::Stream,
            (Proto::Udp, _) => SockType::Dgram,
            (Proto::Unix, u) => u.map_or(SockType::Unknown, |u| u.sock_type),
        },
        family: s.family,
        state: s.state,
        local_addr: inet.then_some(s.local_addr),
        local_port: inet.then_some(s.local_port),
        remote_addr: connected.then_some(s.remote_addr),
        remote_port: connected.then_some(s.remote_port),
        path: unix
            .and_then(|u| u.name.as_ref())
            .map(UnixName::to_string_lossy),
        unix_name: unix.and_then(|u| u.name.clone()),
        path_status: unix.and_then(|u| u.path_status),
        vfs: unix.and_then(|u| u.vfs),
        peer: unix.and_then(|u| u.peer),
        uid: s.uid,
        accept_queue: queue_listener.then_some(AcceptQueue {
            depth: s.rqueue,
            backlog: s.wqueue,
        }),
        syn_queue: match (snap.syn_queue.get(&s.inode), syn) {
            // Read from the listener itself: exact for this socket.
            (Some(&depth), _) if syn_read && s.is_tcp_listener() => Some(SynQueue {
                depth,
                scope: SynScope::Socket,
            }),
            (_, Some(m)) if s.is_tcp_listener() => Some(SynQueue {
                depth: m.get(&key(ns, s)).copied().unwrap_or(0),
                scope: if group_size > 1 {
                    SynScope::Group
                } else {
                    SynScope::Socket
                },
            }),
            _ => None,
        },
        recv_q: (!queue_listener).then_some(s.rqueue),
        send_q: (!queue_listener).then_some(s.wqueue),
        drops: s.drops,
        rcvbuf: s.rcvbuf,
        reuseport,
        backlog_clamped: match (queue_listener, somaxconn) {
            (true, Some(max)) => Some(s.wqueue == max),
            _ => None,
        },
        holders: holders_of(snap, s.inode, sock_ns),
        waiters: snap.waiters.get(&s.inode).cloned().unwrap_or_default(),
        netns: ns.label(sock_ns),
        forward: None,
    }
}

/// A socket's holders; each one whose own namespace differs from the
/// socket's carries it.
fn holders_of(snap: &Snapshot, inode: Inode, sock_ns: u64) -> Vec<Holder> {
    let mut list = snap.holders.get(&inode).cloned().unwrap_or_default();
    for h in &mut list {
        h.netns = snap
            .netns
            .of_pid
            .get(&h.pid)
            .copied()
            .filter(|theirs| *theirs != sock_ns && sock_ns != 0);
    }
    list
}

/// The namespaces looked into, ours first.
fn namespaces(ns: &NetnsMap) -> Vec<crate::model::netns::Netns> {
    let mut v: Vec<_> = ns.namespaces.values().map(|i| i.label.clone()).collect();
    v.sort_by_key(|n| (n.inode != ns.own, n.inode));
    v
}

/// Build the report for `query` from one snapshot.
pub fn report(query: &Query, snap: &Snapshot) -> Report {
    let listeners: Vec<&Socket> = snap.sockets.iter().filter(|s| s.is_listener()).collect();
    let ns = &snap.netns;

    // Listener groups, in key order.
    let mut members: BTreeMap<GroupKey, Vec<Inode>> = BTreeMap::new();
    for l in &listeners {
        members.entry(key(ns, l)).or_default().push(l.inode);
    }

    // SYN queue: request sockets counted per owning group.
    let syn: Option<HashMap<GroupKey, u32>> = snap.request_socks.as_ref().map(|reqs| {
        let mut m = HashMap::new();
        for r in reqs {
            if let Some(k) = owner(ns, r, &listeners) {
                *m.entry(k).or_insert(0) += 1;
            }
        }
        m
    });

    let sockets: Vec<SocketReport> = snap
        .sockets
        .iter()
        .map(|s| {
            let group = s.is_listener().then(|| members.get(&key(ns, s))).flatten();
            let group_size = group.map_or(0, Vec::len);
            // Per socket only when every member's queue was read: else
            // the group's count, for all of them (never a mix).
            let read = group.is_some_and(|g| g.iter().all(|i| snap.syn_queue.contains_key(i)));
            socket_report(s, snap, group_size, syn.as_ref(), read)
        })
        .collect();
    let sockets = forwards::resolve(sockets, &snap.forwards);

    let by_inode: HashMap<Inode, &SocketReport> = sockets.iter().map(|s| (s.inode, s)).collect();
    let unseen = crate::model::warning::unreadable_processes(&snap.warnings);
    let groups = members
        .values()
        .filter_map(|inodes| {
            let socks: Vec<&SocketReport> = inodes
                .iter()
                .filter_map(|i| by_inode.get(i).copied())
                .collect();
            (!socks.is_empty()).then(|| {
                let mut g = group(&socks, unseen);
                forwards::add_to_verdict(&mut g, &socks, &sockets);
                forwards::add_reached_through(&mut g, &sockets);
                g
            })
        })
        .collect();

    Report {
        schema: SCHEMA,
        query: query.to_string(),
        host: snap.host.clone(),
        sockets,
        groups,
        warnings: snap.warnings.clone(),
        namespaces: namespaces(ns),
        scan: snap.scan.as_ref().map(Into::into),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `127.0.0.1:8000`, `*:8000`, `[::1]:8000`; `?` without an address (unix).
fn show_addr(addr: Option<IpAddr>, port: Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(p)) => crate::model::Endpoint(a, p).to_string(),
        _ => "?".to_string(),
    }
}

/// What could not be seen, as the verdict's caveat: `None` when every
/// process was read.
fn caveat(unseen: Option<u64>) -> Option<String> {
    match unseen? {
        0 => Some("some processes are hidden by /proc's hidepid".into()),
        n => Some(format!(
            "{} could not be read",
            plural(n as usize, "process", "processes")
        )),
    }
}

/// Who holds the group's one socket, as the verdict opens ("at least"
/// when some processes could not be read).
fn who(pids: usize, unseen: Option<u64>) -> String {
    match (pids, caveat(unseen)) {
        (0, Some(c)) => format!("one socket, no holder visible ({c})"),
        (0, None) => {
            "one socket, no holding process found (held outside this PID namespace, or closing)"
                .to_string()
        }
        (1, Some(c)) => format!("one socket held by at least 1 process ({c})"),
        (1, None) => "one socket held by 1 process".to_string(),
        (n, Some(c)) => format!("one socket shared by at least {n} processes (fork; {c})"),
        (n, None) => format!("one socket shared by {n} processes (fork)"),
    }
}

/// `unseen`: how many processes could not be read (`Some(0)`: an unknown
/// number hidden by hidepid), `None` when the holder scan saw everything.
fn group(socks: &[&SocketReport], unseen: Option<u64>) -> Group {
    let first = socks[0];
    let proto = first.proto;
    let pids: HashSet<u32> = socks
        .iter()
        .flat_map(|s| s.holders.iter().map(|h| h.pid))
        .collect();
    let kind = if socks.len() > 1 {
        GroupKind::Reuseport
    } else if pids.len() > 1 {
        GroupKind::Shared
    } else {
        GroupKind::Single
    };
    let mut verdict = match proto {
        Proto::Tcp | Proto::Unix => queue_verdict(socks, kind, pids.len(), unseen),
        Proto::Udp => datagram_verdict(socks, kind, pids.len(), unseen),
    };
    let accepting: HashSet<(u32, u32)> = socks
        .iter()
        .flat_map(|s| {
            s.waiters
                .iter()
                .filter(|w| w.how == WaitHow::Accept)
                .map(|w| (w.pid, w.tid))
        })
        .collect();
    if kind == GroupKind::Shared && accepting.len() > 1 {
        verdict.push_str(&format!(
            "; {} threads blocked in accept() on it: the kernel wakes one per connection",
            accepting.len()
        ));
    }
    // epoll without EPOLLEXCLUSIVE: every process waiting on a socket wakes
    // for each connection (the thundering herd); counted per socket.
    let herd = socks
        .iter()
        .map(|s| {
            s.waiters
                .iter()
                .filter(|w| w.how == WaitHow::Epoll { exclusive: false })
                .map(|w| w.pid)
                .collect::<HashSet<u32>>()
                .len()
        })
        .max()
        .unwrap_or(0);
    if herd > 1 {
        verdict.push_str(&format!(
            "; {herd} processes wait in epoll without EPOLLEXCLUSIVE: each connection wakes all {herd}"
        ));
    }
    let full = socks
        .iter()
        .any(|s| s.accept_queue.is_some_and(|q| q.depth > q.backlog));
    if full {
        verdict.push_str(match proto {
            Proto::Unix => {
                "; accept queue FULL: new connections fail with EAGAIN (non-blocking) or wait"
            }
            _ => "; accept queue FULL: new connections are being dropped or delayed",
        });
    }
    if proto == Proto::Unix {
        match first.path_status {
            Some(PathStatus::Unlinked) => verdict.push_str(
                "; its path was unlinked: new clients cannot reach it (ENOENT), only those already queued",
            ),
            Some(PathStatus::Replaced) => verdict.push_str(
                "; its path now names another file: new clients reach that, not this socket",
            ),
            _ => {}
        }
    }
    Group {
        netns: first.netns.inode,
        proto,
        local_addr: first.local_addr,
        local_port: first.local_port,
        path: first.path.clone(),
        kind,
        inodes: socks.iter().map(|s| s.inode).collect(),
        holders: pids.len(),
        holders_complete: unseen.is_none(),
        verdict,
    }
}

/// TCP and unix listeners: accept queues.
fn queue_verdict(
    socks: &[&SocketReport],
    kind: GroupKind,
    pids: usize,
    unseen: Option<u64>,
) -> String {
    let queue = |s: &SocketReport| s.accept_queue.map_or((0, 0), |q| (q.depth, q.backlog));
    match kind {
        GroupKind::Single | GroupKind::Shared => {
            let (depth, backlog) = queue(socks[0]);
            format!(
                "{}: one accept queue, {depth} waiting of {backlog}",
                who(pids, unseen)
            )
        }
        GroupKind::Reuseport => {
            let depths: Vec<String> = socks.iter().map(|s| queue(s).0.to_string()).collect();
            format!(
                "{} on {} (SO_REUSEPORT group): {} accept queues ({} waiting); the kernel hashes each new connection to one of them",
                plural(socks.len(), "socket", "sockets"),
                show_addr(socks[0].local_addr, socks[0].local_port),
                socks.len(),
                depths.join(", ")
            )
        }
    }
}

fn opt_num(v: Option<u32>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}

/// UDP: receive queues (bytes) and drops.
fn datagram_verdict(
    socks: &[&SocketReport],
    kind: GroupKind,
    pids: usize,
    unseen: Option<u64>,
) -> String {
    match kind {
        GroupKind::Single | GroupKind::Shared => {
            let s = socks[0];
            let mut v = format!(
                "{}: one receive queue, {} bytes of {}",
                who(pids, unseen),
                opt_num(s.recv_q),
                opt_num(s.rcvbuf)
            );
            if let Some(d) = s.drops {
                v.push_str(&format!(
                    ", {} dropped",
                    plural(d as usize, "datagram", "datagrams")
                ));
            }
            v
        }
        GroupKind::Reuseport => {
            let drops: Vec<String> = socks.iter().map(|s| opt_num(s.drops)).collect();
            let mut v = format!(
                "{} on {} (SO_REUSEPORT group): {} receive queues, drops {}; the kernel hashes each datagram's addresses and ports to one of them",
                plural(socks.len(), "socket", "sockets"),
                show_addr(socks[0].local_addr, socks[0].local_port),
                socks.len(),
                drops.join("/")
            );
            // Several UDP sockets can also share a port through
            // SO_REUSEADDR alone; then one of them gets every unicast
            // datagram. Say so when the sockets told us.
            if socks.iter().any(|s| s.reuseport == Some(false)) {
                v = format!(
                    "{} on {} without SO_REUSEPORT (SO_REUSEADDR): one of them receives each unicast datagram, drops {}",
                    plural(socks.len(), "socket", "sockets"),
                    show_addr(socks[0].local_addr, socks[0].local_port),
                    drops.join("/")
                );
            }
            v
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
