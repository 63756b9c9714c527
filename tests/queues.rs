//! Live queue tests: listeners owned by this test process on loopback,
//! port 0; `sockmap inspect --json` must report what the kernel holds.
//! Loops are bounded in count and time; nothing here is timed.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketType};

mod common;

use common::json::{self, Family, GroupKind, ScanMethod, SynScope, TcpState, WaitHow};
use common::{inspect_json, ss_available};

fn sockmap(args: &[&str]) -> (i32, String, String) {
    let out = common::run_bounded(common::sockmap(args), Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A listener with an explicit backlog (std's TcpListener always uses 128).
fn listen(addr: &str, backlog: i32, setup: impl Fn(&rustix::fd::OwnedFd)) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let fam = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    // CLOEXEC: without it the sockmap children other tests spawn inherit
    // the socket, and (rightly) show up as holders.
    let fd = rustix::net::socket_with(
        fam,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    setup(&fd);
    rustix::net::bind(&fd, &addr).unwrap();
    rustix::net::listen(&fd, backlog).unwrap();
    TcpListener::from(fd)
}

fn port(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

/// Repeat `f` until it returns Some, at most ~5 s.
fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not reached within 5s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn accept_queue_depth_and_backlog() {
    let l = listen("127.0.0.1:0", 50, |_| {});
    let p = port(&l);
    let clients: Vec<TcpStream> = (0..7)
        .map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap())
        .collect();
    let v = eventually(|| {
        let v = inspect_json(&format!(":{p}"));
        let depth = v
            .sockets
            .first()
            .and_then(|s| s.accept_queue)
            .map(|q| q.depth);
        (depth == Some(7)).then_some(v)
    });
    let s = &v.sockets[0];
    assert_eq!(v.schema, 2);
    assert_eq!(s.accept_queue.map(|q| q.backlog), Some(50));
    assert_eq!(s.state, TcpState::Listen);
    assert_eq!(s.local_port, Some(p));
    // This process holds it, at this fd.
    let h = &s.holders[0];
    assert_eq!(h.pid, std::process::id());
    assert_eq!(h.fd, l.as_raw_fd() as u32);
    assert_eq!(v.groups[0].kind, GroupKind::Single);
    if common::require(ss_available(), "`ss` (apt-get install iproute2)") {
        let out = Command::new("ss")
            .args(["-Htln", &format!("sport = :{p}")])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cols[1..3], &["7", "50"], "ss Recv-Q/Send-Q: {line}");
    }
    drop(clients);
}

#[test]
fn backlog_is_clamped_to_somaxconn() {
    let somaxconn: i32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let l = listen("127.0.0.1:0", somaxconn.saturating_mul(4), |_| {});
    let v = inspect_json(&format!(":{}", port(&l)));
    let somaxconn = u32::try_from(somaxconn).expect("somaxconn is not negative");
    assert_eq!(
        v.sockets[0].accept_queue.map(|q| q.backlog),
        Some(somaxconn)
    );
    assert_eq!(v.sockets[0].backlog_clamped, Some(true));
    assert_eq!(v.host.somaxconn, Some(somaxconn));
}

#[test]
fn syn_queue_counts_silent_clients_of_a_defer_accept_listener() {
    // TCP_DEFER_ACCEPT drops the final ACK of a client that sends nothing,
    // so its connection stays a request socket (SYN_RECV) on our side.
    let l = listen("127.0.0.1:0", 64, |_| {});
    unsafe {
        let secs: libc::c_int = 30;
        let r = libc::setsockopt(
            l.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            &secs as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        assert_eq!(r, 0);
    }
    let p = port(&l);
    let clients: Vec<TcpStream> = (0..9)
        .map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap())
        .collect();
    let v = eventually(|| {
        let v = inspect_json(&format!(":{p}"));
        let depth = v.sockets.first().and_then(|s| s.syn_queue).map(|q| q.depth);
        (depth == Some(9)).then_some(v)
    });
    assert_eq!(v.sockets[0].accept_queue.map(|q| q.depth), Some(0));
    assert_eq!(
        v.sockets[0].syn_queue.map(|q| q.scope),
        Some(SynScope::Socket)
    );
    // Both ways of measuring agree: request sockets counted in the
    // established hash (the /proc scan), and the listener's own count
    // (icsk_accept_queue.qlen) read by the BPF scan.
    if common::require(common::is_root(), "root, for the BPF scan") {
        for scan in ["proc", "bpf"] {
            let mut cmd = common::sockmap(&["inspect", &format!(":{p}"), "--json", "--scan", scan]);
            cmd.env_remove("SOCKMAP_NO_BPF");
            let out = common::run_bounded(cmd, Duration::from_secs(60));
            assert_eq!(
                out.status.code(),
                Some(0),
                "--scan {scan}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let depth = json::report(&out.stdout).sockets[0]
                .syn_queue
                .map(|q| q.depth);
            assert_eq!(depth, Some(9), "--scan {scan}");
        }
    }
    if common::require(ss_available(), "`ss` (apt-get install iproute2)") {
        let out = Command::new("ss")
            .args(["-Htn", "state", "syn-recv", &format!("sport = :{p}")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 9);
    }
    drop(clients);
}

fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

#[test]
fn a_thread_blocked_in_accept_is_a_waiter() {
    let l = listen("127.0.0.1:0", 8, |_| {});
    let p = port(&l);
    let fd = l.as_raw_fd();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        let _ = l.accept(); // blocks until the test connects below
    });
    let tid = rx.recv().unwrap();
    let v = eventually(|| {
        let v = inspect_json(&format!(":{p}"));
        (v.sockets.first()?.waiters.len() == 1).then_some(v)
    });
    let w = &v.sockets[0].waiters[0];
    assert_eq!(w.how, WaitHow::Accept);
    assert_eq!(w.pid, std::process::id());
    assert_eq!(w.tid, tid);
    assert_eq!(w.fd, fd as u32);
    // Release the thread.
    let _c = TcpStream::connect(("127.0.0.1", p)).unwrap();
    t.join().unwrap();
}

#[test]
fn a_thread_in_epoll_wait_on_the_listener_is_a_waiter() {
    use rustix::event::epoll;
    let l = listen("127.0.0.1:0", 8, |_| {});
    let p = port(&l);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(&ep, &l, epoll::EventData::new_u64(1), epoll::EventFlags::IN).unwrap();
    let epfd = ep.as_raw_fd();
    let t = std::thread::spawn(move || {
        let mut events = Vec::with_capacity(4);
        // At most 20 s; the connect below wakes it long before.
        let timeout = rustix::time::Timespec {
            tv_sec: 20,
            tv_nsec: 0,
        };
        let _ = epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        );
    });
    let v = eventually(|| {
        let v = inspect_json(&format!(":{p}"));
        (v.sockets.first()?.waiters.len() == 1).then_some(v)
    });
    let w = &v.sockets[0].waiters[0];
    assert_eq!(w.how, WaitHow::Epoll);
    assert_eq!(w.fd, epfd as u32);
    let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let _ = c.write_all(b"x");
    t.join().unwrap();
    drop(l);
}

#[test]
fn ipv6_loopback_exact_address() {
    if !common::require(common::ipv6_loopback(), "an IPv6 loopback (::1)") {
        return;
    }
    let l = TcpListener::bind("[::1]:0").expect("bind [::1]:0");
    let p = port(&l);
    let v = inspect_json(&format!("[::1]:{p}"));
    let s = &v.sockets[0];
    assert_eq!(s.family, Family::Inet6);
    assert_eq!(s.local_addr, Some(std::net::Ipv6Addr::LOCALHOST.into()));
    assert_eq!(s.holders[0].pid, std::process::id());
    // The IPv4 loopback with that port is a different address: nothing.
    let (code, _, err) = sockmap(&["inspect", &format!("127.0.0.1:{p}")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no listening TCP socket matches"), "{err}");
}

#[test]
fn watch_prints_exactly_count_json_lines() {
    let l = listen("127.0.0.1:0", 50, |_| {});
    let p = port(&l);
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap())
        .collect();
    let (code, out, err) = sockmap(&[
        "watch",
        &format!(":{p}"),
        "--count",
        "3",
        "--interval",
        "100ms",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        let v = json::sample(line);
        assert_eq!(v.seq, i as u64 + 1);
        assert_eq!(v.sockets[0].accept_queue.map(|q| q.depth), Some(3));
        assert_eq!(v.sockets[0].accept_queue.map(|q| q.backlog), Some(50));
        assert!(v.counters.listen_overflows.is_some());
    }
    drop(clients);
}

#[test]
fn reuseport_sockets_are_a_group_with_one_queue_each() {
    let reuse =
        |fd: &rustix::fd::OwnedFd| rustix::net::sockopt::set_socket_reuseport(fd, true).unwrap();
    let first = listen("127.0.0.1:0", 16, reuse);
    let p = port(&first);
    let others: Vec<TcpListener> = (0..2)
        .map(|_| listen(&format!("127.0.0.1:{p}"), 16, reuse))
        .collect();
    let v = inspect_json(&format!("127.0.0.1:{p}"));
    let socks = &v.sockets;
    assert_eq!(socks.len(), 3);
    let mut inodes: Vec<u64> = socks.iter().map(|s| s.inode).collect();
    inodes.dedup();
    assert_eq!(inodes.len(), 3, "three distinct inodes");
    let me = std::process::id();
    for s in socks {
        assert_eq!(s.reuseport, Some(true), "inferred from the group");
        // A fork of this binary (another test spawning) holds our fds
        // until it execs: not counted.
        let ours = s.holders.iter().filter(|h| h.ppid != Some(me)).count();
        assert_eq!(ours, 1, "{:?}", s.holders);
    }
    assert_eq!(v.groups.len(), 1);
    assert_eq!(v.groups[0].kind, GroupKind::Reuseport);
    let verdict = &v.groups[0].verdict;
    assert!(
        verdict.starts_with(&format!(
            "3 sockets on 127.0.0.1:{p} (SO_REUSEPORT group): 3 accept queues"
        )),
        "{verdict}"
    );

    // A lone socket cannot be told apart from sock_diag alone, and the
    // socket is never touched to ask it: unknown (null), not a guess.
    let lone = listen("127.0.0.1:0", 16, reuse);
    let v = inspect_json(&format!(":{}", port(&lone)));
    assert_eq!(v.groups[0].kind, GroupKind::Single);
    if v.scan.as_ref().is_none_or(|s| s.method == ScanMethod::Proc) {
        assert_eq!(v.sockets[0].reuseport, None);
    }
    drop(others);
}
