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
use crate::model::{Holder, Inode, RequestSock, Snapshot, Socket, WaitHow};
use crate::target::Query;

/// A listener's identity for grouping: sockets sharing it can only exist
/// through SO_REUSEPORT. The namespace comes first: two containers each
/// listening on :80 are two unrelated listeners.
type GroupKey = (u64, IpAddr, u16, u32);

fn key(ns: &NetnsMap, s: &Socket) -> GroupKey {
    (ns.socket(s.inode), s.local_addr, s.local_port, s.ifindex)
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
    // A request socket's namespace is the dump's; 0 means ours.
    let r_ns = if r.netns == 0 { ns.own } else { r.netns };
    let on_port = || {
        listeners
            .iter()
            .filter(move |l| l.local_port == r.local_port && ns.socket(l.inode) == r_ns)
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

/// Build the report for `query` from one snapshot.
pub fn report(query: &Query, snap: &Snapshot) -> Report {
    let listeners: Vec<&Socket> = snap.sockets.iter().filter(|s| s.is_listener()).collect();
    let ns = &snap.netns;

    // Listener groups, in socket order.
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
            let listener = s.is_listener();
            let sock_ns = ns.socket(s.inode);
            // somaxconn is per namespace.
            let somaxconn = ns
                .namespaces
                .get(&sock_ns)
                .map_or(snap.host.somaxconn, |i| i.host.somaxconn);
            let group_size = members.get(&key(ns, s)).map_or(0, Vec::len);
            let reuseport = snap
                .reuseport
                .get(&s.inode)
                .copied()
                .or((listener && group_size > 1).then_some(true));
            SocketReport {
                inode: s.inode,
                cookie: s.cookie,
                proto: "tcp",
                family: s.family,
                state: s.state,
                local_addr: s.local_addr,
                local_port: s.local_port,
                remote_addr: (!listener).then_some(s.remote_addr),
                remote_port: (!listener).then_some(s.remote_port),
                uid: s.uid,
                accept_queue: listener.then_some(AcceptQueue {
                    depth: s.rqueue,
                    backlog: s.wqueue,
                }),
                syn_queue: match (&syn, listener) {
                    (Some(m), true) => Some(SynQueue {
                        depth: m.get(&key(ns, s)).copied().unwrap_or(0),
                        scope: if group_size > 1 {
                            SynScope::Group
                        } else {
                            SynScope::Socket
                        },
                    }),
                    _ => None,
                },
                recv_q: (!listener).then_some(s.rqueue),
                send_q: (!listener).then_some(s.wqueue),
                drops: s.drops,
                reuseport,
                backlog_clamped: match (listener, somaxconn) {
                    (true, Some(max)) => Some(s.wqueue == max),
                    _ => None,
                },
                holders: holders_of(snap, s.inode, sock_ns),
                waiters: snap.waiters.get(&s.inode).cloned().unwrap_or_default(),
                netns: ns.label(sock_ns),
                forward: None,
            }
        })
        .collect();
    let sockets = forwards::resolve(sockets, &snap.forwards);

    let by_inode: HashMap<Inode, &SocketReport> = sockets.iter().map(|s| (s.inode, s)).collect();
    let unseen = crate::model::warning::unreadable_processes(&snap.warnings);
    let groups = members
        .iter()
        .map(|((netns, addr, port, _), inodes)| {
            let socks: Vec<&SocketReport> = inodes
                .iter()
                .filter_map(|i| by_inode.get(i).copied())
                .collect();
            let mut g = group(*addr, *port, &socks, unseen);
            g.netns = *netns;
            forwards::add_to_verdict(&mut g, &socks, &sockets);
            forwards::add_reached_through(&mut g, &sockets);
            g
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
    }
}

/// The namespaces looked into, ours first.
fn namespaces(ns: &NetnsMap) -> Vec<crate::model::netns::Netns> {
    let mut v: Vec<_> = ns.namespaces.values().map(|i| i.label.clone()).collect();
    v.sort_by_key(|n| (n.inode != ns.own, n.inode));
    v
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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn show_addr(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        IpAddr::V4(a) => format!("{a}:{port}"),
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

/// `unseen`: how many processes could not be read (`Some(0)`: an unknown
/// number hidden by hidepid), `None` when the holder scan saw everything.
fn group(addr: IpAddr, port: u16, socks: &[&SocketReport], unseen: Option<u64>) -> Group {
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
    let queue = |s: &SocketReport| s.accept_queue.map_or((0, 0), |q| (q.depth, q.backlog));
    let full = socks.iter().any(|s| {
        let (d, b) = queue(s);
        d > b
    });
    let mut verdict = match kind {
        GroupKind::Single | GroupKind::Shared => {
            let (depth, backlog) = socks.first().map_or((0, 0), |s| queue(s));
            let who = match (pids.len(), caveat(unseen)) {
                (0, Some(c)) => format!("one socket, no holder visible ({c})"),
                (0, None) => "one socket, no holding process found (held outside this PID namespace, or closing)".to_string(),
                (1, Some(c)) => format!("one socket held by at least 1 process ({c})"),
                (1, None) => "one socket held by 1 process".to_string(),
                (n, Some(c)) => {
                    format!("one socket shared by at least {n} processes (fork; {c})")
                }
                (n, None) => format!("one socket shared by {n} processes (fork)"),
            };
            format!("{who}: one accept queue, {depth} waiting of {backlog}")
        }
        GroupKind::Reuseport => {
            let depths: Vec<String> = socks.iter().map(|s| queue(s).0.to_string()).collect();
            format!(
                "{} on {} (SO_REUSEPORT group): {} accept queues ({} waiting); the kernel hashes each new connection to one of them",
                plural(socks.len(), "socket", "sockets"),
                show_addr(addr, port),
                socks.len(),
                depths.join(", ")
            )
        }
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
    if full {
        verdict.push_str("; accept queue FULL: new connections are being dropped or delayed");
    }
    Group {
        netns: 0,
        local_addr: addr,
        local_port: port,
        kind,
        inodes: socks.iter().map(|s| s.inode).collect(),
        holders: pids.len(),
        holders_complete: unseen.is_none(),
        verdict,
    }
}

#[cfg(test)]
mod tests;
