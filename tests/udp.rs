//! Live: UDP sockets through inet_diag (IPPROTO_UDP), on loopback ports
//! this test binds, with `ss -uampe` as the cross-check; and `pid:` on a
//! process holding a TCP, a UDP and a unix socket.

mod common;
mod sockfix;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::json::{self, GroupKind, Proto, Report, SockType, TcpState};
use sockfix::{
    inode_of, inspect_json, local_port, path_bytes, run, ss_or_skip, ss_rows, tcp_listener,
    udp_bound, unix_listener, Holder, TempDir,
};

/// Per inode, what `ss -uampen` says: (Recv-Q, rcvbuf `rb`, drops `d`).
fn ss_udp(port: u16) -> BTreeMap<u64, (u64, u64, u64)> {
    let local = format!("127.0.0.1:{port}");
    ss_rows(&["-uampen"])
        .into_iter()
        .filter(|r| r.fields.get(3).is_some_and(|f| *f == local))
        .map(|r| {
            let skmem = &r.line[r.line.find("skmem:(").expect("skmem") + 7..];
            let skmem = &skmem[..skmem.find(')').expect("skmem end")];
            let item = |key: &str| -> u64 {
                skmem
                    .split(',')
                    .find_map(|i| {
                        i.strip_prefix(key)
                            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                    })
                    .unwrap_or_else(|| panic!("no {key} in {skmem}"))
                    .parse()
                    .expect("number")
            };
            let ino = r.after("ino:").expect("ino:");
            (
                ino,
                (r.fields[1].parse().expect("Recv-Q"), item("rb"), item("d")),
            )
        })
        .collect()
}

/// Per inode, what sockmap says: (recv_q, rcvbuf, drops).
fn ours(v: &Report) -> BTreeMap<u64, (u64, u64, u64)> {
    v.sockets
        .iter()
        .map(|s| {
            let n =
                |k: &str, f: Option<u32>| u64::from(f.unwrap_or_else(|| panic!("{k} in {s:#?}")));
            (
                s.inode,
                (
                    n("recv_q", s.recv_q),
                    n("rcvbuf", s.rcvbuf),
                    n("drops", s.drops),
                ),
            )
        })
        .collect()
}

/// Three SO_REUSEPORT sockets with small receive buffers; ten clients
/// send datagrams nobody reads. Receive queues and drops per socket equal
/// `ss -uampe`'s; the group is a reuseport group with the per-socket drops
/// in its verdict.
#[test]
fn reuseport_group_queues_and_drops() {
    let first = udp_bound(0, true, Some(1024));
    let port = local_port(first.0);
    let others = [
        udp_bound(port, true, Some(1024)),
        udp_bound(port, true, Some(1024)),
    ];
    let inodes: Vec<u64> = std::iter::once(&first)
        .chain(&others)
        .map(|f| inode_of(f.0))
        .collect();
    let payload = [7u8; 200];
    for _ in 0..10 {
        let c = UdpSocket::bind("127.0.0.1:0").expect("client");
        for _ in 0..40 {
            c.send_to(&payload, ("127.0.0.1", port)).expect("send");
        }
    }
    let target = format!("udp:{port}");

    // Loopback delivery may finish in a softirq after send_to returns:
    // compare once two ss readings around sockmap's agree (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        let before = ss_or_skip("reuseport_group_queues_and_drops").then(|| ss_udp(port));
        let v = inspect_json(&[&target]);
        let after = before.as_ref().map(|_| ss_udp(port));
        match (before, after) {
            (Some(b), Some(a)) if a == b => {
                assert_eq!(ours(&v), a, "sockmap vs ss -uampe (recv-q, rcvbuf, drops)");
                break v;
            }
            (None, _) => break v,
            _ => assert!(Instant::now() < deadline, "UDP figures never settled"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let socks = &v.sockets;
    assert_eq!(socks.len(), 3, "{v:#?}");
    for &ino in &inodes {
        let s = v.socket(ino);
        assert_eq!(s.proto, Proto::Udp);
        assert_eq!(s.sock_type, SockType::Dgram);
        assert_eq!(s.state, TcpState::Close);
        assert_eq!(s.local_port, Some(port));
        assert_eq!(s.accept_queue, None);
        assert_eq!(s.remote_addr, None);
        assert_eq!(s.holder_pids(), [std::process::id()].into_iter().collect());
    }
    let total_drops: u64 = ours(&v).values().map(|t| t.2).sum();
    let total_queued: u64 = ours(&v).values().map(|t| t.0).sum();
    assert!(total_queued > 0, "nothing queued: {v:#?}");
    assert!(
        total_drops > 0,
        "400 datagrams into ~3 × 4.5 KiB dropped nothing: {v:#?}"
    );

    let groups = &v.groups;
    assert_eq!(groups.len(), 1, "{v:#?}");
    let g = &groups[0];
    assert_eq!(g.proto, Proto::Udp);
    assert_eq!(g.kind, GroupKind::Reuseport);
    let drops: Vec<String> = socks
        .iter()
        .map(|s| s.drops.expect("drops").to_string())
        .collect();
    let verdict = &g.verdict;
    assert_eq!(
        *verdict,
        format!(
            "3 sockets on 127.0.0.1:{port} (SO_REUSEPORT group): 3 receive queues, drops {}; \
             the kernel hashes each datagram's addresses and ports to one of them",
            drops.join("/")
        )
    );

    // check: the drops and the queue bytes, failing and passing.
    let worst_q = ours(&v).values().map(|t| t.0).max().unwrap_or(0);
    let (code, out, _) = run(&["check", &target, "--max-drops", "0"]);
    assert_eq!(code, 1, "{out}");
    let (code, out, _) = run(&["check", &target, "--max-recv-queue", &worst_q.to_string()]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&["check", &port.to_string(), "--proto", "udp"]);
    assert_eq!(code, 0, "{out}");
}

/// A forked UDP server: one socket, one receive queue, two holders.
#[test]
fn forked_udp_socket_is_shared() {
    let s = udp_bound(0, false, None);
    let port = local_port(s.0);
    let child = Holder::fork(&[s.0]);
    let c = UdpSocket::bind("127.0.0.1:0").expect("client");
    c.send_to(b"hello", ("127.0.0.1", port)).expect("send");
    let v = inspect_json(&["-u", &port.to_string()]);
    let ino = inode_of(s.0);
    let sock = v.socket(ino);
    assert_eq!(
        sock.holder_pids(),
        [std::process::id(), child.pid].into_iter().collect()
    );
    assert_eq!(v.groups[0].kind, GroupKind::Shared);
    let verdict = &v.groups[0].verdict;
    assert!(
        verdict.starts_with(&format!(
            "one socket shared by {}2 processes (fork",
            common::at_least()
        )) && verdict.contains("): one receive queue, "),
        "{verdict}"
    );
    if ss_or_skip("forked_udp_socket_is_shared") {
        let row = ss_rows(&["-uampen"])
            .into_iter()
            .find(|r| r.after("ino:") == Some(ino))
            .expect("ss row");
        assert_eq!(row.pids, sock.holder_pids(), "{}", row.line);
    }
    drop(child);
}

/// Nothing TCP on a UDP-only port: say what is there instead.
#[test]
fn tcp_target_on_a_udp_port_says_what_is_there() {
    let s = udp_bound(0, false, None);
    let port = local_port(s.0);
    let (code, _, err) = run(&["inspect", &format!(":{port}")]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "no listening TCP socket matches :{port}; a UDP socket is bound there (try udp:{port})"
        )),
        "{err}"
    );
}

/// `pid:` covers every kind the process holds: a forked process with a
/// TCP listener, a UDP socket and a unix listener shows exactly those.
#[test]
fn pid_covers_tcp_udp_and_unix() {
    let dir = TempDir::new("udp");
    let path = dir.path("all.sock");
    let tcp = tcp_listener();
    let udp = udp_bound(0, false, None);
    let unix = unix_listener(libc::SOCK_STREAM, &path_bytes(&path), 4);
    let child = Holder::fork(&[tcp.as_raw_fd(), udp.0, unix.0]);
    let v = inspect_json(&[&format!("pid:{}", child.pid)]);
    let mut got: Vec<(Proto, u64)> = v.sockets.iter().map(|s| (s.proto, s.inode)).collect();
    got.sort();
    let mut want = vec![
        (Proto::Tcp, inode_of(tcp.as_raw_fd())),
        (Proto::Udp, inode_of(udp.0)),
        (Proto::Unix, inode_of(unix.0)),
    ];
    want.sort();
    assert_eq!(got, want, "{v:#?}");
    // -x narrows it to the unix socket.
    let v = inspect_json(&["-x", &format!("pid:{}", child.pid)]);
    assert_eq!(v.sockets.len(), 1);
    assert_eq!(v.sockets[0].proto, Proto::Unix);
    drop(child);
}

/// The overview names every kind: our TCP, UDP and unix listeners each
/// get a row with their figures.
#[test]
fn overview_lists_every_kind() {
    let dir = TempDir::new("udp");
    let path = dir.path("ov.sock");
    let tcp = tcp_listener();
    let udp = udp_bound(0, false, None);
    let unix = unix_listener(libc::SOCK_STREAM, &path_bytes(&path), 7);
    let (code, out, err) = run(&["inspect"]);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or_default();
    assert!(header.starts_with("PROTO"), "{out}");
    let row = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let me = format!("[{}]", std::process::id());
    let t = row(&format!("127.0.0.1:{}", tcp.local_addr().unwrap().port()));
    assert_eq!(t[0], "tcp");
    assert!(t[6].ends_with(&me), "{t:?}");
    let u = row(&format!("127.0.0.1:{} ", local_port(udp.0)));
    assert_eq!(u[0], "udp");
    let x = row(path.to_str().unwrap());
    assert_eq!(
        (x[0].as_str(), x[2].as_str(), x[3].as_str()),
        ("unix/stream", "0", "7")
    );
    assert!(x[6].ends_with(&me), "{x:?}");
    drop((tcp, udp, unix));
}

/// `watch` on a UDP port: per-socket queue bytes, rcvbuf and drops in each
/// sample, and the host's UDP counters (deltas) beside them.
#[test]
fn watch_udp_samples() {
    let s = udp_bound(0, false, Some(1024));
    let port = local_port(s.0);
    let c = UdpSocket::bind("127.0.0.1:0").expect("client");
    for _ in 0..50 {
        c.send_to(&[1u8; 300], ("127.0.0.1", port)).expect("send");
    }
    let (code, out, err) = run(&[
        "watch",
        &format!("udp:{port}"),
        "--json",
        "-n",
        "2",
        "-i",
        "50ms",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<json::Sample> = out.lines().map(json::sample).collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in &lines {
        let sock = &l.sockets[0];
        assert_eq!(sock.proto, Proto::Udp);
        assert_eq!(sock.inode, inode_of(s.0));
        assert!(sock.recv_q.expect("recv_q") > 0, "{sock:?}");
        assert!(sock.drops.expect("drops") > 0, "{sock:?}");
        assert!(sock.rcvbuf.expect("rcvbuf") > 0, "{sock:?}");
        let u = &l.udp_counters;
        assert!(u.in_errors.is_some() && u.rcvbuf_errors.is_some(), "{u:?}");
    }
    // The first sample has no interval behind it.
    assert_eq!(lines[0].udp_counters.rcvbuf_errors, Some(0));
}
