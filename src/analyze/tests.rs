//! Join and classification on hand-built snapshots (no kernel, no root).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::model::{Family, Holder, HostInfo, ProcessState, Proto, TcpState, Waiter};
use crate::target;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ANY4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn listener(inode: u64, addr: IpAddr, port: u16, depth: u32, backlog: u32) -> Socket {
    Socket {
        inode: Inode(inode),
        cookie: inode,
        proto: Proto::Tcp,
        family: if addr.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        },
        state: TcpState::Listen,
        local_addr: addr,
        local_port: port,
        remote_addr: if addr.is_ipv4() {
            ANY4
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        },
        remote_port: 0,
        ifindex: 0,
        uid: Some(0),
        rqueue: depth,
        wqueue: backlog,
        drops: Some(0),
        rcvbuf: None,
        unix: None,
    }
}

fn holder(pid: u32, ppid: u32, fd: u32) -> Holder {
    Holder {
        pid,
        ppid: Some(ppid),
        comm: "srv".into(),
        uid: Some(0),
        user: Some("root".into()),
        fd,
        netns: None,
        state: Some(ProcessState::Sleeping),
        cmdline: None,
    }
}

fn query(t: &str) -> Query {
    Query::new(vec![target::parse(t).unwrap()])
}

/// The forked server that the analysis and the renderers are both tested
/// on: one listener on 127.0.0.1:8000 (inode 7288, 7 waiting of backlog
/// 50, one request socket) held through fd 5 by `refserver` 3556 and its
/// two children 3558 and 3559, which sleep in accept() on it.
pub(crate) fn forked_snapshot() -> Snapshot {
    let refserver = |pid, ppid| Holder {
        comm: "refserver".into(),
        cmdline: Some(vec!["refserver".into(), "--port".into(), "8000".into()]),
        ..holder(pid, ppid, 5)
    };
    let in_accept = |pid| Waiter {
        pid,
        tid: pid,
        how: WaitHow::Accept,
        fd: 5,
    };
    let mut snap = Snapshot {
        sockets: vec![listener(7288, LO, 8000, 7, 50)],
        request_socks: Some(vec![RequestSock {
            netns: 0,
            family: Family::Inet,
            local_addr: LO,
            local_port: 8000,
        }]),
        host: HostInfo {
            somaxconn: Some(4096),
            tcp_max_syn_backlog: Some(512),
            syncookies: Some(1),
        },
        ..Default::default()
    };
    snap.holders.insert(
        Inode(7288),
        vec![
            refserver(3556, 1),
            refserver(3558, 3556),
            refserver(3559, 3556),
        ],
    );
    snap.waiters
        .insert(Inode(7288), vec![in_accept(3558), in_accept(3559)]);
    snap
}

#[test]
fn one_inode_three_holders_is_shared() {
    let snap = forked_snapshot();
    let r = report(&query(":8000"), &snap);
    assert_eq!(r.sockets.len(), 1);
    assert_eq!(r.sockets[0].holders.len(), 3, "every holder is kept");
    assert_eq!(
        r.sockets[0].accept_queue,
        Some(AcceptQueue {
            depth: 7,
            backlog: 50
        })
    );
    assert_eq!(r.sockets[0].backlog_clamped, Some(false));
    assert_eq!(r.groups.len(), 1);
    let g = &r.groups[0];
    assert_eq!(g.kind, GroupKind::Shared);
    assert_eq!(g.holders, 3);
    assert!(
        g.verdict.starts_with(
            "one socket shared by 3 processes (fork): one accept queue, 7 waiting of 50"
        ),
        "{}",
        g.verdict
    );
    assert!(
        g.verdict.contains("2 threads blocked in accept()"),
        "{}",
        g.verdict
    );
}

#[test]
fn epoll_waiters_without_epollexclusive_are_a_thundering_herd() {
    let with = |exclusive: bool| {
        let mut snap = Snapshot {
            sockets: vec![listener(7288, LO, 8000, 0, 50)],
            request_socks: Some(vec![]),
            ..Default::default()
        };
        snap.holders.insert(
            Inode(7288),
            vec![holder(10, 1, 5), holder(11, 10, 5), holder(12, 10, 5)],
        );
        let waiters = [10, 11, 12]
            .iter()
            .map(|&pid| Waiter {
                pid,
                tid: pid,
                how: WaitHow::Epoll { exclusive },
                fd: 9,
            })
            .collect();
        snap.waiters.insert(Inode(7288), waiters);
        report(&query(":8000"), &snap).groups[0].verdict.clone()
    };
    let herd = with(false);
    assert!(
        herd.ends_with(
            "; 3 processes wait in epoll without EPOLLEXCLUSIVE: each connection wakes all 3"
        ),
        "{herd}"
    );
    let exclusive = with(true);
    assert!(!exclusive.contains("EPOLLEXCLUSIVE"), "{exclusive}");
}

#[test]
fn three_inodes_on_one_port_is_reuseport() {
    let mut snap = Snapshot {
        sockets: vec![
            listener(1, LO, 8000, 2, 128),
            listener(2, LO, 8000, 0, 128),
            listener(3, LO, 8000, 5, 128),
        ],
        ..Default::default()
    };
    for (i, pid) in [(1u64, 10u32), (2, 11), (3, 12)] {
        snap.holders.insert(Inode(i), vec![holder(pid, 1, 3)]);
    }
    let r = report(&query(":8000"), &snap);
    assert_eq!(r.groups.len(), 1);
    let g = &r.groups[0];
    assert_eq!(g.kind, GroupKind::Reuseport);
    assert_eq!(g.inodes, vec![Inode(1), Inode(2), Inode(3)]);
    assert_eq!(g.holders, 3);
    assert!(
        g.verdict.starts_with(
            "3 sockets on 127.0.0.1:8000 (SO_REUSEPORT group): 3 accept queues (2, 0, 5 waiting)"
        ),
        "{}",
        g.verdict
    );
    assert!(r.sockets.iter().all(|s| s.reuseport == Some(true)));
}

#[test]
fn exact_reuseport_reading_wins_over_inference() {
    let mut snap = Snapshot {
        sockets: vec![listener(1, LO, 80, 0, 10)],
        ..Default::default()
    };
    snap.holders.insert(Inode(1), vec![holder(10, 1, 3)]);
    let r = report(&query(":80"), &snap);
    assert_eq!(r.sockets[0].reuseport, None, "unknown stays unknown");
    assert_eq!(r.groups[0].kind, GroupKind::Single);
    snap.reuseport.insert(Inode(1), true);
    assert_eq!(
        report(&query(":80"), &snap).sockets[0].reuseport,
        Some(true)
    );
}

#[test]
fn different_addresses_are_different_groups() {
    let snap = Snapshot {
        sockets: vec![listener(1, LO, 80, 0, 10), listener(2, ANY4, 80, 0, 10)],
        ..Default::default()
    };
    let r = report(&query(":80"), &snap);
    assert_eq!(r.groups.len(), 2);
    assert!(r.groups.iter().all(|g| g.kind == GroupKind::Single));
    assert!(r.groups[0].verdict.contains("no holding process found"));
}

#[test]
fn syn_queue_goes_to_the_most_specific_listener() {
    let req = |a: IpAddr, port| RequestSock {
        netns: 0,
        family: if a.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        },
        local_addr: a,
        local_port: port,
    };
    let snap = Snapshot {
        sockets: vec![
            listener(1, LO, 80, 0, 10),
            listener(2, ANY4, 80, 0, 10),
            listener(3, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 81, 0, 10),
        ],
        request_socks: Some(vec![
            req(LO, 80),                                     // → 127.0.0.1:80
            req(LO, 80),                                     // → 127.0.0.1:80
            req(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80), // → 0.0.0.0:80
            req(LO, 81),                                     // → [::]:81 (dual stack)
            req(IpAddr::V6(Ipv6Addr::LOCALHOST), 81),        // → [::]:81
            req(LO, 99),                                     // no listener here
        ]),
        ..Default::default()
    };
    let r = report(&Query::default(), &snap);
    let depth = |i: u64| {
        r.sockets
            .iter()
            .find(|s| s.inode == Inode(i))
            .unwrap()
            .syn_queue
            .unwrap()
            .depth
    };
    assert_eq!((depth(1), depth(2), depth(3)), (2, 1, 2));
}

#[test]
fn syn_queue_not_measured_is_null_and_full_queue_is_said() {
    let snap = Snapshot {
        sockets: vec![listener(1, LO, 80, 11, 10)],
        host: HostInfo {
            somaxconn: Some(10),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = report(&query(":80"), &snap);
    assert_eq!(r.sockets[0].syn_queue, None);
    assert_eq!(r.sockets[0].backlog_clamped, Some(true));
    assert!(
        r.groups[0].verdict.contains("FULL"),
        "{}",
        r.groups[0].verdict
    );
}

#[test]
fn connected_sockets_have_no_accept_queue_and_no_group() {
    let mut s = listener(9, LO, 8000, 100, 200);
    s.state = TcpState::Established;
    s.remote_port = 5555;
    let snap = Snapshot {
        sockets: vec![s],
        ..Default::default()
    };
    let r = report(&query("inode:9"), &snap);
    assert_eq!(r.sockets[0].accept_queue, None);
    assert_eq!(
        (r.sockets[0].recv_q, r.sockets[0].send_q),
        (Some(100), Some(200))
    );
    assert_eq!(r.sockets[0].remote_port, Some(5555));
    assert!(r.groups.is_empty());
}

/// Two containers each listening on *:80 (own namespaces): two unrelated
/// listeners with a verdict each, not an SO_REUSEPORT group; a SYN_RECV in
/// one namespace counts for its own listener only; somaxconn is each
/// namespace's own; a holder in another namespace carries it.
#[test]
fn same_port_in_two_namespaces_is_two_groups() {
    use crate::model::netns::{Netns, NetnsInfo, NetnsMap};
    let mut snap = Snapshot {
        sockets: vec![
            listener(11, ANY4, 80, 0, 128),
            listener(12, ANY4, 80, 2, 4096),
        ],
        request_socks: Some(vec![RequestSock {
            netns: 202,
            family: Family::Inet,
            local_addr: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 3)),
            local_port: 80,
        }]),
        host: HostInfo {
            somaxconn: Some(4096),
            ..Default::default()
        },
        ..Default::default()
    };
    let info = |inode, somaxconn| NetnsInfo {
        label: Netns {
            inode,
            ..Netns::default()
        },
        somaxconn: Some(somaxconn),
    };
    snap.netns = NetnsMap {
        own: 100,
        namespaces: [
            (100, info(100, 4096)),
            (201, info(201, 128)),
            (202, info(202, 4096)),
        ]
        .into(),
        of_socket: [(Inode(11), 201), (Inode(12), 202)].into(),
        of_pid: [(10, 201), (20, 100)].into(),
    };
    snap.holders.insert(Inode(11), vec![holder(10, 1, 3)]);
    snap.holders.insert(Inode(12), vec![holder(20, 1, 3)]);
    let r = report(&query(":80"), &snap);
    assert_eq!(r.groups.len(), 2, "{:#?}", r.groups);
    assert!(r.groups.iter().all(|g| g.kind == GroupKind::Single));
    assert_eq!(
        r.groups.iter().map(|g| g.netns).collect::<Vec<_>>(),
        vec![201, 202]
    );
    let s = |i| r.sockets.iter().find(|s| s.inode == Inode(i)).unwrap();
    assert_eq!(s(11).reuseport, None);
    assert_eq!(s(11).netns.inode, 201);
    assert_eq!(s(11).syn_queue.map(|q| q.depth), Some(0));
    assert_eq!(s(12).syn_queue.map(|q| q.depth), Some(1));
    // 128 is namespace 201's somaxconn, not the host's 4096.
    assert_eq!(s(11).backlog_clamped, Some(true));
    assert_eq!(s(12).backlog_clamped, Some(true));
    // The holder of 12 lives in our namespace, not the socket's.
    assert_eq!(s(11).holders[0].netns, None);
    assert_eq!(s(12).holders[0].netns, Some(100));
    assert_eq!(
        r.namespaces.iter().map(|n| n.inode).collect::<Vec<_>>(),
        vec![100, 201, 202]
    );
}

/// A docker-proxy listener on the host forwarding to one of two
/// containers on :8000: it points at that container's listener only, and
/// each end's verdict names the other.
#[test]
fn forward_points_at_its_containers_listener() {
    use crate::model::netns::{Forward, Netns, NetnsInfo, NetnsMap};
    let mut snap = Snapshot {
        sockets: vec![
            listener(1, LO, 8080, 0, 4096),
            listener(11, ANY4, 8000, 0, 128),
            listener(12, ANY4, 8000, 0, 128),
        ],
        request_socks: Some(vec![]),
        ..Default::default()
    };
    let info = |inode| NetnsInfo {
        label: Netns {
            inode,
            ..Netns::default()
        },
        somaxconn: Some(4096),
    };
    snap.netns = NetnsMap {
        own: 100,
        namespaces: [(100, info(100)), (201, info(201)), (202, info(202))].into(),
        of_socket: [(Inode(11), 201), (Inode(12), 202)].into(),
        of_pid: HashMap::new(),
    };
    snap.forwards.insert(
        Inode(1),
        Forward {
            via: "docker-proxy".into(),
            to_addr: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2)),
            to_port: 8000,
            to_inodes: vec![],
            to_netns: Some(201),
        },
    );
    let r = report(&query(":8000"), &snap);
    let proxy = r.sockets.iter().find(|s| s.inode == Inode(1)).unwrap();
    let f = proxy.forward.as_ref().unwrap();
    assert_eq!(f.to_inodes, vec![Inode(11)]);
    let verdict = |i| {
        r.groups
            .iter()
            .find(|g| g.inodes.contains(&Inode(i)))
            .unwrap()
            .verdict
            .clone()
    };
    assert!(
        verdict(1).contains("goes on to 172.17.0.2:8000 in netns 201: listener inode 11"),
        "{}",
        verdict(1)
    );
    assert!(
        verdict(11)
            .contains("reached from netns 100 through docker-proxy on 127.0.0.1:8080 (inode 1)"),
        "{}",
        verdict(11)
    );
    assert!(!verdict(12).contains("docker-proxy"), "{}", verdict(12));
}
