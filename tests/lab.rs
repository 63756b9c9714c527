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
    accept_queue_depth, listening_inodes, pid_alive, run_bounded, socket_inodes, sockmap,
    ss_available, wait_until, Done, ServeProc,
};
use serde::Deserialize;

const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// `sockmap load --json`'s report, read back strictly: a schema change
/// must be deliberate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LoadReport {
    schema: u32,
    connect: String,
    clients: u64,
    rounds: u32,
    size: u64,
    bytes: u64,
    bytes_sent: u64,
    failed: u64,
    failures: Failures,
    first_errors: Vec<FirstError>,
    seconds: f64,
    throughput_mib_s: f64,
    connect_ms: Percentiles,
    round_trip_ms: Percentiles,
    threads: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Failures {
    connect: u64,
    eof: u64,
    reset: u64,
    timeout: u64,
    mismatch: u64,
    other: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FirstError {
    kind: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Percentiles {
    p50: Option<f64>,
    p99: Option<f64>,
}

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
    assert_eq!(serve.mode, "shared");
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
    assert_eq!(serve.mode, "reuseport");
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
    let done = Done::parse(&serve.terminate());
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
    let done = Done::parse(&out);
    assert_eq!(done.event, "done");
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

#[test]
fn sigint_stops_it_like_sigterm() {
    let serve = ServeProc::start(&["--workers", "2", "--reuseport"]);
    echo_once(serve.port, b"x");
    // Ctrl-C signals the whole foreground group: parent and workers.
    // SAFETY: kill(2) on the process group this test created.
    unsafe { libc::kill(-(serve.pid() as i32), libc::SIGINT) };
    assert!(common::wait_exited(serve.pid(), common::STOP_LIMIT));
    let done = Done::parse(&serve.terminate());
    assert_eq!(done.total, 1);
    assert!(
        done.workers.iter().all(|w| w.accepted.is_some()),
        "{done:?}"
    );
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
    let done = Done::parse(&serve.terminate());
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

    let done = Done::parse(&serve.terminate());
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

#[test]
fn load_counts_refused_connections() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, r, _) = load(port, &["--clients", "5", "--rounds", "1", "--size", "1KiB"]);
    assert_eq!(code, 1);
    assert_eq!(r.failures.connect, 5, "{r:?}");
    assert_eq!(r.failed, 5);
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
    // SAFETY: kill(2) on a worker of the serve this test owns.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(20), || serve
            .stderr_so_far()
            .contains(&format!("worker {victim} died: killed by signal 9"))),
        "stderr: {}",
        serve.stderr_so_far()
    );
    for i in 0..5u8 {
        echo_once(serve.port, &[i; 10]);
    }
    let done = Done::parse(&serve.terminate());
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
    let done = Done::parse(&serve.terminate());
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

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for extra in [&[][..], &["--reuseport"][..]] {
        let mut args = vec!["serve", "--port", &port];
        args.extend_from_slice(extra);
        let out = run_bounded(sockmap(&args), Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(3), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot bind 127.0.0.1:{port}")),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        assert!(out.stdout.is_empty());
    }
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
    assert_eq!(Done::parse(&serve.terminate()).total, 21);
}
