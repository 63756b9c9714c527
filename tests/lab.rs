//! The bundled experiment, live: `sockmap serve` (fork server) and
//! `sockmap load` (echo client) as the user runs them, on loopback only.
//! Every process is owned by the test (own process group, killed on drop),
//! every loop is bounded in count and time, nothing asserts on timing.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    accept_queue_depth, listening_inodes, pid_alive, run_bounded, serve_report, socket_inodes,
    sockmap, ss_available, wait_until, ServeMode, ServeProc,
};
use sockmap::lab::message::{FailKind, LoadModeName, LoadReport};

const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// Run `sockmap load --json` against 127.0.0.1:`port`; (exit code,
/// report, stderr).
fn load(port: u16, extra: &[&str]) -> (i32, LoadReport, String) {
    load_at(&format!("127.0.0.1:{port}"), extra)
}

fn load_at(target: &str, extra: &[&str]) -> (i32, LoadReport, String) {
    let mut args = vec!["load", "--connect", target, "--json"];
    args.extend_from_slice(extra);
    let out = run_bounded(sockmap(&args), LOAD_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bad load report ({e}): {stdout:?}; stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// One echo round trip on a fresh connection (bounded by timeouts).
fn echo_once(port: u16, msg: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, msg);
}

/// The `ss -Htlnpe` rows for `port`: (inode, pids holding it).
fn ss_listeners(port: u16) -> Vec<(u64, Vec<u32>)> {
    let out = Command::new("ss")
        .args(["-Htlnpe", &format!("sport = :{port}")])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| {
            let ino = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ino:"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no ino: in {l:?}"));
            let mut pids: Vec<u32> = l
                .split("pid=")
                .skip(1)
                .filter_map(|s| s.split(',').next()?.parse().ok())
                .collect();
            pids.sort_unstable();
            (ino, pids)
        })
        .collect()
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// The syscall numbers of accept and accept4, where we know them.
fn accept_syscalls() -> Option<[u64; 2]> {
    if cfg!(target_arch = "x86_64") {
        Some([43, 288])
    } else if cfg!(target_arch = "aarch64") {
        Some([202, 242])
    } else {
        None
    }
}

fn in_accept(pid: u32, nrs: [u64; 2]) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .is_some_and(|n| nrs.contains(&n))
}

#[test]
fn shared_mode_is_one_socket_held_by_every_worker() {
    let serve = ServeProc::start(&["--workers", "3"]);
    assert_eq!(serve.mode, ServeMode::Shared);
    assert_eq!(serve.pids.len(), 3);
    assert_eq!(serve.ready.addr, "127.0.0.1");
    assert_eq!(serve.ready.backlog, 1000);

    // /proc view: one listening inode, and every worker holds exactly it.
    let inodes = listening_inodes(serve.port);
    assert_eq!(inodes.len(), 1, "one listening socket: {inodes:?}");
    for &pid in &serve.pids {
        assert!(
            socket_inodes(pid).contains(&inodes[0]),
            "pid {pid} holds the shared socket"
        );
    }
    if common::require(ss_available(), "`ss` (apt-get install iproute2)") {
        let rows = ss_listeners(serve.port);
        assert_eq!(rows.len(), 1, "ss shows one listener: {rows:?}");
        assert_eq!(rows[0].0, inodes[0]);
        assert_eq!(rows[0].1, sorted(&serve.pids), "users: has every pid");
    }
    // No threads: fork() happened in a single-threaded process.
    for &pid in &serve.pids {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count();
        assert_eq!(tasks, 1, "pid {pid} has {tasks} threads");
    }
    // Every worker blocks in accept() (what `inspect` shows as waiters).
    // Bounded retries: the serve tick interrupts accept now and then.
    if let Some(nrs) = accept_syscalls() {
        for &pid in &serve.pids {
            assert!(
                wait_until(Duration::from_secs(10), || in_accept(pid, nrs)),
                "pid {pid} never seen blocked in accept"
            );
        }
    }
    serve.terminate();
}

#[test]
fn reuseport_mode_is_one_socket_per_worker() {
    let serve = ServeProc::start(&["--workers", "3", "--reuseport"]);
    assert_eq!(serve.mode, ServeMode::Reuseport);
    assert_eq!(serve.pids.len(), 3);
    let inodes = listening_inodes(serve.port);
    assert_eq!(inodes.len(), 3, "three listening sockets: {inodes:?}");
    // Each worker holds exactly one of them, and a different one.
    let mut held = Vec::new();
    for &pid in &serve.pids {
        let mine: Vec<u64> = socket_inodes(pid)
            .into_iter()
            .filter(|i| inodes.contains(i))
            .collect();
        assert_eq!(mine.len(), 1, "pid {pid} holds one listener: {mine:?}");
        held.push(mine[0]);
    }
    held.sort_unstable();
    assert_eq!(held, inodes);
    if common::require(ss_available(), "`ss` (apt-get install iproute2)") {
        let rows = ss_listeners(serve.port);
        assert_eq!(rows.len(), 3, "ss shows three listeners: {rows:?}");
        let mut owners: Vec<u32> = rows
            .iter()
            .map(|(_, pids)| {
                assert_eq!(pids.len(), 1, "one pid per socket: {rows:?}");
                pids[0]
            })
            .collect();
        owners.sort_unstable();
        assert_eq!(owners, sorted(&serve.pids));
    }
    // It echoes.
    echo_once(serve.port, b"reuseport");
    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 1);
}

#[test]
fn sigterm_prints_every_pid_and_leaves_no_worker() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let pids = serve.pids.clone();
    for i in 0..25u8 {
        echo_once(serve.port, &[i; 100]);
    }
    let out = serve.terminate();
    let done = serve_report(&out);
    let named: Vec<u32> = done.workers.iter().map(|w| w.pid).collect();
    assert_eq!(named, pids, "one row per pid, parent first");
    assert!(done.workers.iter().all(|w| w.accepted.is_some()));
    let sum: u64 = done.workers.iter().filter_map(|w| w.accepted).sum();
    assert_eq!(done.total, 25);
    assert_eq!(sum, 25);
    assert!(
        wait_until(Duration::from_secs(10), || pids
            .iter()
            .all(|&p| !pid_alive(p))),
        "a worker is still alive"
    );
}

/// A signal to the whole group (parent and workers) stops serve cleanly:
/// every worker reports its count.
fn group_signal_stops_it(sig: i32) {
    let serve = ServeProc::start(&["--workers", "2", "--reuseport"]);
    echo_once(serve.port, b"x");
    // SAFETY: kill(2) on the process group this test created.
    unsafe { libc::kill(-(serve.pid() as i32), sig) };
    assert!(common::wait_exited(serve.pid(), common::STOP_LIMIT));
    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 1);
    assert!(
        done.workers.iter().all(|w| w.accepted.is_some()),
        "{done:?}"
    );
}

/// Ctrl-C signals the whole foreground group: parent and workers.
#[test]
fn sigint_stops_it_like_sigterm() {
    group_signal_stops_it(libc::SIGINT);
}

/// A closed terminal (or `kill -HUP`) stops serve like SIGTERM: exit 0,
/// the distribution printed, no worker left behind.
#[test]
fn sighup_stops_it_like_sigterm() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let pids = serve.pids.clone();
    echo_once(serve.port, b"hup");
    serve.signal(libc::SIGHUP);
    assert!(common::wait_exited(serve.pid(), common::STOP_LIMIT));
    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 1);
    let named: Vec<u32> = done.workers.iter().map(|w| w.pid).collect();
    assert_eq!(named, pids);
    assert!(
        done.workers.iter().all(|w| w.accepted.is_some()),
        "{done:?}"
    );
}

/// A hangup reaches the whole foreground group, workers included.
#[test]
fn sighup_to_the_group_stops_it_too() {
    group_signal_stops_it(libc::SIGHUP);
}

#[test]
fn sigterm_abandons_a_connection_that_stays_open() {
    // One worker per idle client: every process ends up blocked in read().
    let serve = ServeProc::start(&["--workers", "2"]);
    let idle: Vec<TcpStream> = (0..2u8)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(&[i]).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s
        })
        .collect();
    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 2);
    // The server closed them: EOF (or a reset) on our side, not a hang.
    for mut s in idle {
        let mut b = [0u8; 1];
        assert!(!matches!(s.read(&mut b), Ok(1)));
    }
}

#[test]
fn load_against_serve_moves_and_verifies_every_byte() {
    let serve = ServeProc::start(&["--workers", "2"]);
    let (code, r, err) = load(
        serve.port,
        &["--clients", "200", "--rounds", "3", "--size", "64KiB"],
    );
    assert_eq!(code, 0, "load failed: {r:?}; stderr: {err}");
    assert_eq!(r.schema, 1);
    assert_eq!((r.clients, r.rounds, r.size), (200, 3, 65536));
    assert_eq!(r.failed, 0, "{r:?}");
    assert_eq!(r.bytes, 200 * 3 * 65536);
    assert_eq!(r.bytes_sent, r.bytes);
    assert!(r.first_errors.is_empty());
    assert!(r.connect_ms.p50.is_some() && r.round_trip_ms.p99.is_some());
    assert!(
        err.is_empty(),
        "no progress bar when stderr is a pipe: {err:?}"
    );

    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 200, "one accept per client: {done:?}");
    assert_eq!(done.workers.len(), 2);
}

#[test]
fn load_prints_a_text_report() {
    let serve = ServeProc::start(&["--workers", "1"]);
    let target = format!("127.0.0.1:{}", serve.port);
    let out = run_bounded(
        sockmap(&[
            "load",
            "--connect",
            &target,
            "--clients",
            "10",
            "--rounds",
            "2",
            "--size",
            "1000",
        ]),
        LOAD_LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("load {target}: 10 clients x 2 rounds x 1000 B\n")),
        "{text}"
    );
    assert!(text.contains("echoed and verified 19.53 KiB in "), "{text}");
    assert!(text.contains("\nfailed 0 of 10 clients\n"), "{text}");
    assert!(text.contains("connect latency p50 "), "{text}");
    assert!(text.contains("round trip      p50 "), "{text}");
    serve.terminate();
}

/// A listener on a free loopback port served by `handle` in a thread,
/// until the returned flag is set (bounded by 120 s regardless).
fn test_server(
    handle: impl Fn(TcpStream) + Send + 'static,
) -> (u16, Arc<AtomicBool>, JoinHandle<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut n = 0;
        while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
            match l.accept() {
                Ok((s, _)) => {
                    n += 1;
                    s.set_nonblocking(false).unwrap();
                    handle(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        n
    });
    (port, stop, t)
}

#[test]
fn load_counts_clients_of_a_server_that_closes_early_as_failed() {
    // Accepts and immediately drops every connection.
    let (port, stop, t) = test_server(drop::<TcpStream>);
    let (code, r, err) = load(
        port,
        &[
            "--clients",
            "20",
            "--rounds",
            "2",
            "--size",
            "64KiB",
            "--timeout",
            "20s",
        ],
    );
    stop.store(true, Ordering::SeqCst);
    let accepted = t.join().unwrap();
    assert_eq!(code, 1, "{r:?}; stderr: {err}");
    assert_eq!(r.failed, 20, "{r:?}");
    assert!(r.failures.eof + r.failures.reset > 0, "{r:?}");
    assert_eq!(r.bytes, 0);
    assert!(accepted > 0);
    assert!(!r.first_errors.is_empty());
}

#[test]
fn load_catches_a_server_that_changes_a_byte() {
    // Echoes, but flips byte 100 of every connection's stream.
    let (port, stop, t) = test_server(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut at = 0usize;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            if (at..at + n).contains(&100) {
                buf[100 - at] ^= 1;
            }
            at += n;
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (code, r, _) = load(port, &["--clients", "3", "--rounds", "1", "--size", "4KiB"]);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(code, 1);
    assert_eq!(r.failures.mismatch, 3, "{r:?}");
    let msg = &r.first_errors[0].message;
    assert!(msg.contains("round 1 byte 100 came back as"), "{msg}");
}

/// A TCP socket bound to a free loopback port but not listening: a
/// connection to it is refused, and since it has no SO_REUSEADDR no other
/// process can bind the port while we hold it (unlike a port freed a
/// moment ago, which anyone may take).
struct RefusingPort {
    fd: std::os::fd::OwnedFd,
    port: u16,
}

impl RefusingPort {
    fn new() -> RefusingPort {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2); the fd is owned at once.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        use std::os::fd::AsRawFd;
        // SAFETY: sa is a valid sockaddr_in of `len` bytes.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), len) };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let mut got: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut got_len = len;
        // SAFETY: got is a writable sockaddr_in of got_len bytes.
        let rc = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut got).cast(), &mut got_len) };
        assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
        RefusingPort {
            fd,
            port: u16::from_be(got.sin_port),
        }
    }
}

#[test]
fn load_counts_refused_connections() {
    let nobody = RefusingPort::new();
    let (code, r, _) = load(
        nobody.port,
        &["--clients", "5", "--rounds", "1", "--size", "1KiB"],
    );
    assert_eq!(code, 1);
    assert_eq!(r.failures.connect, 5, "{r:?}");
    assert_eq!(r.failed, 5);
    drop(nobody.fd);
}

#[test]
fn load_says_how_many_fds_it_needs_when_the_hard_limit_is_too_low() {
    let mut cmd = sockmap(&["load", "--connect", "127.0.0.1:9", "--clients", "1000"]);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_bounded(cmd, LOAD_LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1000 clients need about"), "{err}");
    assert!(err.contains("hard limit is 256"), "{err}");
    assert!(
        err.contains("ulimit -n") && err.contains("fewer --clients"),
        "{err}"
    );
}

#[test]
fn killing_the_parent_takes_the_workers_with_it() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let children = serve.children().to_vec();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|&p| pid_alive(p)));
    serve.signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(20), || children
            .iter()
            .all(|&p| !pid_alive(p))),
        "PDEATHSIG: workers must die with the parent"
    );
}

#[test]
fn a_dead_worker_is_reported_and_the_rest_keep_serving() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let victim = serve.children()[0];
    serve.kill_worker(victim);
    for i in 0..5u8 {
        echo_once(serve.port, &[i; 10]);
    }
    let done = serve_report(&serve.terminate());
    let dead = done.workers.iter().find(|w| w.pid == victim).unwrap();
    assert_eq!(dead.accepted, None, "a dead worker's count is unknown");
    assert_eq!(done.total, 5);
    assert_eq!(done.workers.len(), 3);
}

#[test]
fn stall_never_accepts_so_the_queue_fills() {
    let serve = ServeProc::start(&["--workers", "2", "--stall", "--backlog", "8"]);
    assert!(serve.ready.stall);
    let conns: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", serve.port)).unwrap())
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || accept_queue_depth(serve.port)
            == 3),
        "depth {}",
        accept_queue_depth(serve.port)
    );
    let done = serve_report(&serve.terminate());
    assert_eq!(done.total, 0);
    drop(conns);
}

#[test]
fn text_mode_ready_line_and_distribution() {
    let mut child = sockmap(&["serve", "--port", "0", "--workers", "2"])
        .spawn()
        .unwrap();
    let guard = GroupGuard(child.id());
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut byte = [0u8; 1];
        // First the ready line, then the rest until EOF.
        while out.read(&mut byte).is_ok_and(|n| n == 1) {
            all.push(byte[0]);
            if byte[0] == b'\n' {
                let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
                all.clear();
            }
        }
    });
    let ready = rx.recv_timeout(common::READY_LIMIT).expect("ready line");
    let pid = child.id();
    let rest = ready
        .strip_prefix("sockmap serve: listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("{ready:?}"));
    let (port, rest) = rest.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    let pids: Vec<u32> = rest
        .strip_prefix("(shared socket, backlog 1000, 2 workers) pids ")
        .unwrap_or_else(|| panic!("{ready:?}"))
        .trim_end()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    assert_eq!(pids[0], pid);
    echo_once(port, b"hi");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(common::STOP_LIMIT) {
        lines.push(l);
    }
    assert!(common::wait_exited(pid, common::STOP_LIMIT));
    drop(guard);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, p) in lines.iter().zip(&pids) {
        assert!(line.starts_with(&format!("pid {p} accepted ")), "{line:?}");
        assert!(line.trim_end().ends_with("%)"), "{line:?}");
    }
    assert_eq!(lines[2], "total 1 accepted\n");
}

/// SIGKILLs a process group when dropped (use before reaping the leader).
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a process group this test created.
        unsafe { libc::kill(-(self.0 as i32), libc::SIGKILL) };
    }
}

/// An address or port that cannot be had is bad input (exit 2), said in
/// one line with the errno; it is not a failed kernel query.
#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for extra in [&[][..], &["--reuseport"][..]] {
        let mut args = vec!["serve", "--port", &port];
        args.extend_from_slice(extra);
        let out = run_bounded(sockmap(&args), Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("sockmap: cannot bind 127.0.0.1:{port}: ")),
            "{err}"
        );
        assert!(
            err.contains("in use") && err.contains("os error 98"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("kernel query"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

/// An address this host does not have (TEST-NET-1, never routed; bind
/// fails before any packet could be sent).
#[test]
fn an_address_not_on_this_host_is_a_clear_error() {
    let out = run_bounded(
        sockmap(&["serve", "--addr", "192.0.2.1", "--port", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("sockmap: cannot bind 192.0.2.1:0: "),
        "{err}"
    );
    assert!(err.contains("os error 99"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn ipv6_loopback() {
    if !common::require(common::ipv6_loopback(), "an IPv6 loopback (::1)") {
        return;
    }
    let serve = ServeProc::start(&["--addr", "::1", "--workers", "2"]);
    assert_eq!(serve.ready.addr, "::1");
    let mut s = TcpStream::connect(("::1", serve.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"six").unwrap();
    let mut back = [0u8; 3];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"six");
    drop(s);
    let (code, r, _) = load_at(
        &format!("[::1]:{}", serve.port),
        &["--clients", "20", "--rounds", "2", "--size", "8KiB"],
    );
    assert_eq!(code, 0);
    assert_eq!(r.failed, 0);
    assert_eq!(serve_report(&serve.terminate()).total, 21);
}

/// `comm:NAME` selects the sockets of every process with that command
/// name: the serve workers are all named `sockmap`.
#[test]
fn comm_target_finds_every_worker() {
    let serve = ServeProc::start(&["--workers", "3"]);
    let v = common::inspect_json("comm:sockmap");
    let ours: Vec<&common::json::Socket> = v
        .sockets
        .iter()
        .filter(|s| s.local_port == Some(serve.port) && s.state == common::json::TcpState::Listen)
        .collect();
    assert_eq!(ours.len(), 1, "the one shared listener: {v:#?}");
    let mut holders: Vec<u32> = ours[0].holders.iter().map(|h| h.pid).collect();
    holders.sort_unstable();
    assert_eq!(holders, sorted(&serve.pids));
    drop(serve);
}

/// `--mode hold` against a server that never accepts: the held
/// connections fill its accept queue to backlog + 1, and they stay queued
/// after the clients close (nobody accepts them).
#[test]
fn hold_mode_fills_a_stalled_accept_queue() {
    let serve = ServeProc::start(&["--workers", "2", "--backlog", "5", "--stall"]);
    let (code, r, err) = load(
        serve.port,
        &[
            "--mode",
            "hold",
            "--hold",
            "1s",
            "--clients",
            "12",
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(r.mode, LoadModeName::Hold);
    assert_eq!(r.hold_seconds, Some(1.0));
    assert_eq!(r.rounds, 1);
    assert_eq!(accept_queue_depth(serve.port), 6, "backlog 5 holds 6");
    let held = r.clients - r.failed;
    assert!(held >= 6, "{r:?}; {err}");
    // Those that could not get in waited for the handshake until --timeout.
    assert_eq!(r.failed, r.failures.timeout, "{r:?}");
    assert_eq!(code, if r.failed == 0 { 0 } else { 1 });
    drop(serve);
}

/// `--mode hold` against an accepting server: every client connects,
/// sends nothing, holds, closes; serve counts every one.
#[test]
fn hold_mode_against_serve_holds_every_connection() {
    let serve = ServeProc::start(&["--workers", "2"]);
    let (code, r, err) = load(
        serve.port,
        &["--mode", "hold", "--hold", "300ms", "--clients", "20"],
    );
    assert_eq!(code, 0, "{r:?}; {err}");
    assert_eq!(r.failed, 0);
    assert_eq!(r.bytes_sent, 0);
    assert_eq!(r.bytes, 0);
    assert_eq!(serve_report(&serve.terminate()).total, 20);
}

#[test]
fn hold_is_only_for_hold_mode() {
    let out = run_bounded(
        sockmap(&["load", "--connect", "127.0.0.1:9", "--hold", "1s"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "sockmap: --hold applies to --mode hold only"
    );
}

/// A tiny HTTP/1.1 responder for one connection: reads requests (head
/// only) and answers each with `respond(request_head)`; records every
/// request head; closes when told to or when the client does.
fn http_conn(mut s: TcpStream, seen: &Seen, respond: &dyn Fn(&str) -> (Vec<u8>, bool)) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        let end = pending.windows(4).position(|w| w == b"\r\n\r\n");
        let Some(end) = end else {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
        pending.drain(..end + 4);
        seen.lock().unwrap().push(head.clone());
        let (reply, close) = respond(&head);
        if s.write_all(&reply).is_err() || close {
            return;
        }
    }
}

/// Requests seen by an HTTP test server, in order.
type Seen = Arc<std::sync::Mutex<Vec<String>>>;

fn http_server(
    respond: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static,
) -> (u16, Arc<AtomicBool>, JoinHandle<u64>, Seen) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let (port, stop, t) = test_server(move |s| http_conn(s, &log, &respond));
    (port, stop, t, seen)
}

const OK_BODY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n";

fn wants_close(head: &str) -> bool {
    head.lines()
        .any(|l| l.eq_ignore_ascii_case("connection: close"))
}

#[test]
fn http_mode_keeps_the_connection_alive_between_rounds() {
    let (port, stop, t, seen) = http_server(|head| (OK_BODY.to_vec(), wants_close(head)));
    let (code, r, err) = load(port, &["--mode", "http", "--clients", "4", "--rounds", "3"]);
    stop.store(true, Ordering::SeqCst);
    let accepted = t.join().unwrap();
    assert_eq!(code, 0, "{r:?}; {err}");
    assert_eq!(r.mode, LoadModeName::Http);
    assert_eq!(r.failed, 0);
    assert_eq!(r.bytes, 4 * 3 * OK_BODY.len() as u64);
    assert_eq!(accepted, 4, "one connection per client");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 12);
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    for h in seen.iter() {
        assert!(h.starts_with("GET / HTTP/1.1\r\n"), "{h}");
        assert!(h.contains(&host), "{h}");
    }
    // Per connection: keep-alive, keep-alive, then close.
    let closes = seen.iter().filter(|h| wants_close(h)).count();
    let keeps = seen
        .iter()
        .filter(|h| h.contains("Connection: keep-alive\r\n"))
        .count();
    assert_eq!((keeps, closes), (8, 4));
    assert!(r.round_trip_ms.p50.is_some());
}

#[test]
fn http_mode_reads_chunked_bodies() {
    let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let (port, stop, t, _) = http_server(move |head| (reply.to_vec(), wants_close(head)));
    let (code, r, err) = load(port, &["--mode", "http", "--clients", "3", "--rounds", "2"]);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(code, 0, "{r:?}; {err}");
    assert_eq!(r.bytes, 3 * 2 * reply.len() as u64);
}

/// A server without keep-alive (a body that ends with the connection):
/// each round on a new connection.
#[test]
fn http_mode_reconnects_when_the_server_closes() {
    let reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close";
    let (port, stop, t, seen) = http_server(move |_| (reply.to_vec(), true));
    let (code, r, err) = load(port, &["--mode", "http", "--clients", "3", "--rounds", "4"]);
    stop.store(true, Ordering::SeqCst);
    let accepted = t.join().unwrap();
    assert_eq!(code, 0, "{r:?}; {err}");
    assert_eq!(accepted, 12, "a connection per round");
    assert_eq!(seen.lock().unwrap().len(), 12);
    assert_eq!(r.bytes, 12 * reply.len() as u64);
}

#[test]
fn http_mode_counts_error_statuses_and_non_http_replies() {
    let (port, stop, t, _) = http_server(|_| {
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec(),
            false,
        )
    });
    let (code, r, _) = load(port, &["--mode", "http", "--clients", "3", "--rounds", "2"]);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(code, 1);
    assert_eq!((r.failed, r.failures.status), (3, 3), "{r:?}");
    let first = &r.first_errors[0];
    assert_eq!(first.kind, FailKind::Status);
    assert!(
        first
            .message
            .ends_with("round 1: HTTP/1.1 503 Service Unavailable"),
        "{first:?}"
    );

    let (port, stop, t, _) = http_server(|_| (b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(), false));
    let (code, r, _) = load(port, &["--mode", "http", "--clients", "2", "--rounds", "1"]);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(code, 1);
    assert_eq!((r.failed, r.failures.protocol), (2, 2), "{r:?}");
    assert!(r.first_errors[0]
        .message
        .contains("not an HTTP/1.x status line: 'SSH-2.0-OpenSSH_9.2'"));
}

/// Echo, the default, against an HTTP server: every client fails on the
/// first byte that differs, and says so (what made `--mode` necessary).
#[test]
fn echo_mode_against_http_is_a_mismatch() {
    // Answers at once, whatever the request (as a server replies 400 to
    // bytes that are not HTTP), then closes.
    let (port, stop, t) = test_server(|mut s| {
        let _ = s.write_all(OK_BODY);
    });
    let (code, r, _) = load(port, &["--clients", "2", "--rounds", "1", "--size", "64"]);
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(code, 1);
    assert_eq!(r.mode, LoadModeName::Echo);
    assert_eq!((r.failed, r.failures.mismatch), (2, 2), "{r:?}");
}
