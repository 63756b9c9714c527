//! The overview `inspect` prints with no target: one row per listening
//! socket of every kind (TCP LISTEN, UDP unconnected, unix LISTEN), like
//! `ss -tulnxp` but with the queue against its limit, the kind of sharing
//! and the holders folded by command; a verdict line only under a socket
//! that is shared or part of a group. Plain columns (no box drawing), so
//! it stays readable at any width; never reaches back into `collect`.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{local_label, state_label};
use crate::escape;
use crate::model::report::{Group, GroupKind, Report, SocketReport};
use crate::model::{PathStatus, Proto};

/// Pids shown per command before `+N`.
const PIDS_SHOWN: usize = 3;

const HEADERS: [&str; 7] = [
    "PROTO",
    "LOCAL",
    "ACCEPT/RECV-Q",
    "BACKLOG/RCVBUF",
    "DROPS",
    "KIND",
    "HOLDERS",
];

/// `nginx[812,813,814] +2 php-fpm[900]`: distinct pids folded by command,
/// in the order first seen; `-` when no holder was found.
pub fn holders_cell(s: &SocketReport) -> String {
    let mut by_comm: Vec<(String, Vec<u32>)> = Vec::new();
    for h in &s.holders {
        // Exact: invalid UTF-8 bytes shown as \xNN.
        let comm = escape::bytes(h.comm.as_bytes());
        match by_comm.iter_mut().find(|(c, _)| *c == comm) {
            Some((_, pids)) if !pids.contains(&h.pid) => pids.push(h.pid),
            Some(_) => {}
            None => by_comm.push((comm, vec![h.pid])),
        }
    }
    if by_comm.is_empty() {
        return "-".into();
    }
    by_comm
        .iter()
        .map(|(comm, pids)| {
            let shown: Vec<String> = pids.iter().take(PIDS_SHOWN).map(u32::to_string).collect();
            let mut cell = format!("{comm}[{}]", shown.join(","));
            if pids.len() > PIDS_SHOWN {
                cell.push_str(&format!(" +{}", pids.len() - PIDS_SHOWN));
            }
            cell
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn row(s: &SocketReport, group: Option<&Group>) -> [String; 7] {
    let proto = match s.proto {
        Proto::Unix => format!("unix/{}", s.sock_type),
        p => p.to_string(),
    };
    let mut local = local_label(s);
    if !s.is_listener() {
        local.push_str(&format!(" ({})", state_label(s)));
    }
    let (queue, limit) = match (s.accept_queue, s.proto) {
        (Some(q), _) => (q.depth.to_string(), q.backlog.to_string()),
        (None, Proto::Udp) => (dash(s.recv_q), dash(s.rcvbuf)),
        (None, _) => (dash(s.recv_q), "-".into()),
    };
    let kind = group.map_or("-", |g| match g.kind {
        GroupKind::Single => "single",
        GroupKind::Shared => "shared",
        GroupKind::Reuseport => "reuseport",
    });
    [
        proto,
        local,
        queue,
        limit,
        dash(s.drops),
        kind.to_string(),
        holders_cell(s),
    ]
}

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut group_of: HashMap<_, &Group> = HashMap::new();
    let mut last_of_group = HashMap::new();
    for g in &report.groups {
        for i in &g.inodes {
            group_of.insert(*i, g);
        }
        if let Some(last) = g.inodes.last() {
            last_of_group.insert(*last, g);
        }
    }
    let rows: Vec<[String; 7]> = report
        .sockets
        .iter()
        .map(|s| row(s, group_of.get(&s.inode).copied()))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string()
    };
    writeln!(out, "{}", line(&HEADERS.map(String::from)))?;
    // Namespaces are named only when more than one is involved.
    let several = super::netns::several(report);
    let forwarded: Vec<crate::model::Inode> = report
        .sockets
        .iter()
        .filter_map(|s| s.forward.as_ref())
        .flat_map(|f| f.to_inodes.iter().copied())
        .collect();
    let mut last_ns = None;
    for (s, r) in report.sockets.iter().zip(&rows) {
        if several && last_ns != Some(s.netns.inode) {
            last_ns = Some(s.netns.inode);
            writeln!(out, "── {} ──", super::netns::label(&s.netns))?;
        }
        writeln!(out, "{}", line(r))?;
        if let Some(g) = last_of_group.get(&s.inode) {
            // A single socket's verdict only when something is wrong.
            let full = s.accept_queue.is_some_and(|q| q.depth > q.backlog);
            let lost = matches!(
                s.path_status,
                Some(PathStatus::Unlinked | PathStatus::Replaced)
            );
            // Both ends of a forward say where the other is.
            let forward = s.forward.is_some() || forwarded.contains(&s.inode);
            if g.kind != GroupKind::Single || full || lost || forward {
                writeln!(out, "  → {}", g.verdict)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::analyze;
    use crate::model::{
        Family, Holder, HostInfo, Inode, Snapshot, SockType, Socket, TcpState, UnixInfo, UnixName,
        Vfs,
    };
    use crate::target::Query;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    fn inet(inode: u64, proto: Proto, state: TcpState, port: u16, rq: u32, wq: u32) -> Socket {
        Socket {
            inode: Inode(inode),
            cookie: inode,
            proto,
            family: Family::Inet,
            state,
            local_addr: LO,
            local_port: port,
            remote_addr: ANY,
            remote_port: 0,
            ifindex: 0,
            uid: Some(0),
            rqueue: rq,
            wqueue: wq,
            drops: Some(if proto == Proto::Udp {
                inode as u32 * 10
            } else {
                0
            }),
            rcvbuf: (proto == Proto::Udp).then_some(212_992),
            unix: None,
        }
    }

    fn unix(inode: u64, path: &[u8], depth: u32, backlog: u32) -> Socket {
        Socket {
            proto: Proto::Unix,
            family: Family::Unix,
            local_port: 0,
            drops: None,
            rcvbuf: None,
            unix: Some(UnixInfo {
                sock_type: SockType::Stream,
                name: Some(UnixName::Path(path.to_vec())),
                vfs: Some(Vfs { ino: 9, dev: 26 }),
                peer: None,
                pending: None,
                path_status: Some(crate::model::PathStatus::Bound),
            }),
            ..inet(inode, Proto::Tcp, TcpState::Listen, 0, depth, backlog)
        }
    }

    fn h(pid: u32, comm: &str) -> Holder {
        Holder {
            pid,
            ppid: Some(1),
            comm: comm.into(),
            uid: Some(0),
            user: Some("root".into()),
            fd: 3,
            netns: None,
            state: None,
            cmdline: None,
        }
    }

    /// nginx (one socket, 5 workers), a DNS server's reuseport trio, a
    /// php-fpm pool over a full unix socket, and a lone listener.
    fn snapshot() -> Snapshot {
        let mut holders = HashMap::new();
        holders.insert(
            Inode(100),
            [812, 813, 814, 815, 816].map(|p| h(p, "nginx")).to_vec(),
        );
        holders.insert(Inode(1), vec![h(901, "dnsd")]);
        holders.insert(Inode(2), vec![h(902, "dnsd")]);
        holders.insert(Inode(3), vec![h(903, "dnsd")]);
        holders.insert(
            Inode(300),
            vec![
                h(700, "php-fpm"),
                h(701, "php-fpm"),
                h(702, "php\x1b[2Jfpm"),
            ],
        );
        holders.insert(Inode(400), vec![h(1000, "sshd")]);
        Snapshot {
            sockets: vec![
                inet(100, Proto::Tcp, TcpState::Listen, 80, 3, 511),
                inet(400, Proto::Tcp, TcpState::Listen, 22, 0, 128),
                inet(1, Proto::Udp, TcpState::Close, 5353, 2304, 0),
                inet(2, Proto::Udp, TcpState::Close, 5353, 0, 0),
                inet(3, Proto::Udp, TcpState::Close, 5353, 768, 0),
                unix(300, b"/run/php/fpm.sock", 6, 5),
            ],
            holders,
            request_socks: Some(vec![]),
            host: HostInfo {
                somaxconn: Some(4096),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn overview_pinned() {
        let report = analyze::report(&Query::default(), &snapshot());
        let mut out = Vec::new();
        write(&mut out, &report).unwrap();
        let got = String::from_utf8(out).unwrap();
        let want = "\
PROTO        LOCAL              ACCEPT/RECV-Q  BACKLOG/RCVBUF  DROPS  KIND       HOLDERS
tcp          127.0.0.1:80       3              511             0      shared     nginx[812,813,814] +2
  → one socket shared by 5 processes (fork): one accept queue, 3 waiting of 511
tcp          127.0.0.1:22       0              128             0      single     sshd[1000]
udp          127.0.0.1:5353     2304           212992          10     reuseport  dnsd[901]
udp          127.0.0.1:5353     0              212992          20     reuseport  dnsd[902]
udp          127.0.0.1:5353     768            212992          30     reuseport  dnsd[903]
  → 3 sockets on 127.0.0.1:5353 (SO_REUSEPORT group): 3 receive queues, drops 10/20/30; the kernel hashes each datagram's addresses and ports to one of them
unix/stream  /run/php/fpm.sock  6              5               -      shared     php-fpm[700,701] php\\x1b[2Jfpm[702]
  → one socket shared by 3 processes (fork): one accept queue, 6 waiting of 5; accept queue FULL: new connections fail with EAGAIN (non-blocking) or wait
";
        assert_eq!(got, want, "\n{got}");
    }
}
