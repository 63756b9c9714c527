//! The BPF holder scan, live (root, kernel BTF): it must agree exactly with
//! the /proc scan — same sockets, same (pid, fd) holders — on a forked
//! listener, a SO_REUSEPORT group, a crowd of processes, and while other
//! processes fork and exit; read SO_REUSEPORT exactly; and fall back to
//! /proc, saying why, whenever it cannot be used.
//!
//! Every server is `sockmap serve` on a free loopback port, in its own
//! process group, killed on drop. Without root or BTF the tests skip
//! loudly; with `CI` set they fail instead.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{run_bounded, sockmap, ServeProc};

const LIMIT: Duration = Duration::from_secs(60);

/// Whether this machine can run the BPF scan; else skip (or fail in CI).
fn bpf_capable(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if root && btf {
        return true;
    }
    let why = format!("{test}: needs root and /sys/kernel/btf/vmlinux (root: {root}, BTF: {btf})");
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run every test");
    }
    eprintln!("SKIPPED {why}");
    false
}

fn tool(test: &str, name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: '{name}' is not installed; CI must run every test");
        }
        eprintln!("SKIPPED {test}: '{name}' is not installed");
    }
    ok
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = sockmap(args);
    cmd.env_remove("SOCKMAP_NO_BPF")
        .env_remove("SOCKMAP_BPF_FAULT")
        .env_remove("SOCKMAP_BPF_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(cmd, LIMIT)
}

/// `inspect TARGETS --json --scan HOW`, which must succeed.
fn inspect(targets: &[String], how: &str) -> Value {
    let mut args = vec!["inspect", "--json", "--scan", how];
    args.extend(targets.iter().map(String::as_str));
    let out = run(&args, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json is JSON")
}

/// inode → sorted (pid, fd) holders.
fn holders(report: &Value) -> BTreeMap<u64, Vec<(u64, u64)>> {
    report["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .map(|s| {
            let mut h: Vec<(u64, u64)> = s["holders"]
                .as_array()
                .expect("holders")
                .iter()
                .map(|h| {
                    (
                        h["pid"].as_u64().expect("pid"),
                        h["fd"].as_u64().expect("fd"),
                    )
                })
                .collect();
            h.sort_unstable();
            (s["inode"].as_u64().expect("inode"), h)
        })
        .collect()
}

fn method(report: &Value) -> &str {
    report["scan"]["method"].as_str().unwrap_or("none")
}

/// Both scans of `targets`; asserts they agree exactly and returns the holders.
fn agree(targets: &[String]) -> BTreeMap<u64, Vec<(u64, u64)>> {
    let bpf = inspect(targets, "bpf");
    let proc = inspect(targets, "proc");
    assert!(
        method(&bpf).starts_with("bpf-task"),
        "--scan bpf used {:?}",
        bpf["scan"]
    );
    assert_eq!(method(&proc), "proc");
    assert_eq!(proc["scan"]["fallback_reason"], "disabled");
    let (b, p) = (holders(&bpf), holders(&proc));
    assert_eq!(b, p, "BPF and /proc scans disagree on {targets:?}");
    b
}

fn pids_of(h: &BTreeMap<u64, Vec<(u64, u64)>>) -> Vec<u64> {
    let mut pids: Vec<u64> = h.values().flatten().map(|(p, _)| *p).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn sorted(pids: &[u32]) -> Vec<u64> {
    let mut v: Vec<u64> = pids.iter().map(|&p| u64::from(p)).collect();
    v.sort_unstable();
    v
}

#[test]
fn forked_listener_same_holders_both_ways() {
    if !bpf_capable("forked_listener_same_holders_both_ways") {
        return;
    }
    let serve = ServeProc::start(&["--workers", "4"]);
    let h = agree(&[format!(":{}", serve.port)]);
    assert_eq!(h.len(), 1, "one shared socket: {h:?}");
    assert_eq!(pids_of(&h), sorted(&serve.pids));
}

#[test]
fn reuseport_group_same_holders_and_flag_read_from_the_sockets() {
    if !bpf_capable("reuseport_group_same_holders_and_flag_read_from_the_sockets") {
        return;
    }
    let serve = ServeProc::start(&["--workers", "3", "--reuseport"]);
    let target = format!(":{}", serve.port);
    let h = agree(std::slice::from_ref(&target));
    assert_eq!(h.len(), 3, "one socket per worker: {h:?}");
    assert_eq!(pids_of(&h), sorted(&serve.pids));
    let bpf = inspect(&[target], "bpf");
    for s in bpf["sockets"].as_array().expect("sockets") {
        assert_eq!(s["reuseport"], true, "{s}");
    }
}

/// One listener alone: nothing to infer from a group, so the flag must
/// come from the socket itself — true with SO_REUSEPORT, false without.
#[test]
fn lone_listener_reuseport_is_exact() {
    if !bpf_capable("lone_listener_reuseport_is_exact") {
        return;
    }
    for (args, want) in [
        (&["--workers", "1", "--reuseport"][..], true),
        (&["--workers", "1"][..], false),
    ] {
        let serve = ServeProc::start(args);
        let bpf = inspect(&[format!(":{}", serve.port)], "bpf");
        let s = &bpf["sockets"][0];
        assert_eq!(s["reuseport"], want, "serve {args:?}: {s}");
        assert_eq!(bpf["sockets"].as_array().map(Vec::len), Some(1));
    }
}

/// Processes that fork and exit all the time, while the scans run: the
/// task list changes under the iterator. The holders of the target do
/// not change, and both scans must see exactly them, every round.
#[test]
fn same_holders_under_fork_churn() {
    if !bpf_capable("same_holders_under_fork_churn") || !tool("same_holders_under_fork_churn", "sh")
    {
        return;
    }
    let serve = ServeProc::start(&["--workers", "3"]);
    let _churn: Vec<Group> = (0..2).map(|_| Group::churn()).collect();
    let target = vec![format!(":{}", serve.port)];
    for round in 0..5 {
        let h = agree(&target);
        assert_eq!(pids_of(&h), sorted(&serve.pids), "round {round}");
    }
}

/// A crowd the test starts: 150 forked holders of one socket and a
/// reuseport group of 40, with fork churn beside them; both scans agree
/// on every socket of both ports.
#[test]
fn crowd_same_holders_both_ways() {
    if !bpf_capable("crowd_same_holders_both_ways") || !tool("crowd_same_holders_both_ways", "sh") {
        return;
    }
    let shared = ServeProc::start(&["--workers", "150"]);
    let group = ServeProc::start(&["--workers", "40", "--reuseport"]);
    let _churn = Group::churn();
    let targets = vec![format!(":{}", shared.port), format!(":{}", group.port)];
    let h = agree(&targets);
    assert_eq!(h.len(), 41, "1 shared socket + 40 reuseport sockets");
    let mut all: Vec<u32> = shared.pids.iter().chain(&group.pids).copied().collect();
    all.sort_unstable();
    assert_eq!(pids_of(&h), sorted(&all));
}

/// One process holding more sockets than one read of the task walk can
/// carry (1,500 clients of `sockmap load` against a server that never
/// accepts): that process is read again by the task_file program scoped
/// to it, and both scans still agree on every (pid, fd).
#[test]
fn process_with_many_sockets_same_holders_both_ways() {
    if !bpf_capable("process_with_many_sockets_same_holders_both_ways") {
        return;
    }
    const CLIENTS: usize = 1500;
    let serve = ServeProc::start(&["--workers", "1", "--stall", "--backlog", "4096"]);
    let connect = format!("127.0.0.1:{}", serve.port);
    let clients = CLIENTS.to_string();
    let load = sockmap(&[
        "load",
        "--connect",
        &connect,
        "--clients",
        &clients,
        "--rounds",
        "1",
        "--size",
        "1",
        "--timeout",
        "120s",
    ])
    .spawn()
    .expect("spawn sockmap load");
    let load = Group(load);
    let pid = load.0.id();
    let ready = common::wait_until(LIMIT, || common::socket_inodes(pid).len() >= CLIENTS);
    assert!(ready, "load did not open {CLIENTS} sockets");
    let h = agree(&["--all".to_string(), format!("pid:{pid}")]);
    let held = h
        .values()
        .flatten()
        .filter(|(p, _)| *p == u64::from(pid))
        .count();
    assert!(held >= CLIENTS, "{held} of the load's sockets found");
}

#[test]
fn scan_proc_and_no_bpf_env_use_proc() {
    if !bpf_capable("scan_proc_and_no_bpf_env_use_proc") {
        return;
    }
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!(":{}", serve.port);
    let proc = inspect(std::slice::from_ref(&target), "proc");
    assert_eq!(proc["scan"]["method"], "proc");
    assert_eq!(proc["scan"]["fallback_reason"], "disabled");
    let out = run(&["inspect", "--json", &target], &[("SOCKMAP_NO_BPF", "1")]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scan"]["method"], "proc");
    assert_eq!(v["scan"]["fallback_reason"], "disabled");
    // And by default, as root: BPF.
    let out = run(&["inspect", "--json", &target], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scan"]["method"], "bpf-task", "{}", v["scan"]);
    assert!(v["scan"]["load_ms"].as_f64().is_some());
}

#[test]
fn not_root_falls_back_to_proc_and_scan_bpf_says_why() {
    if !bpf_capable("not_root_falls_back_to_proc_and_scan_bpf_says_why")
        || !tool(
            "not_root_falls_back_to_proc_and_scan_bpf_says_why",
            "setpriv",
        )
    {
        return;
    }
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!(":{}", serve.port);
    let nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::BIN,
        ])
        .args(args)
        .env_remove("SOCKMAP_NO_BPF")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        run_bounded(cmd, LIMIT)
    };
    let out = nobody(&["inspect", "--json", &target]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scan"]["method"], "proc");
    assert_eq!(v["scan"]["fallback_reason"], "not-permitted");
    let out = nobody(&["inspect", "--scan", "bpf", &target]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BPF holder scan not available") && err.contains("root"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// A load the kernel refuses (here: a truncated program blob, the
/// test-only SOCKMAP_BPF_FAULT=corrupt) falls back silently; `--scan bpf`
/// fails with exit 3; `--verbose` says what happened and prints the
/// verifier's log, as `SOCKMAP_BPF_LOG=1` alone does.
#[test]
fn refused_load_falls_back_quietly_and_verbose_says_why() {
    if !bpf_capable("refused_load_falls_back_quietly_and_verbose_says_why") {
        return;
    }
    let serve = ServeProc::start(&["--workers", "2"]);
    let target = format!(":{}", serve.port);
    let fault = [("SOCKMAP_BPF_FAULT", "corrupt")];
    let out = run(&["inspect", "--json", &target], &fault);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "silent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scan"]["method"], "proc");
    assert_eq!(v["scan"]["fallback_reason"], "load-failed");
    let detail = v["scan"]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("holders_task") && detail.contains("holders_file"),
        "{detail}"
    );
    assert_eq!(
        holders(&v).values().next().map(Vec::len),
        Some(2),
        "the /proc scan still finds both"
    );

    let out = run(&["inspect", "--scan", "bpf", &target], &fault);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");

    let out = run(&["inspect", "-v", &target], &fault);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holders: proc") && err.contains("load-failed"),
        "{err}"
    );
    assert!(err.contains("BPF verifier log"), "{err}");

    let log = [("SOCKMAP_BPF_FAULT", "corrupt"), ("SOCKMAP_BPF_LOG", "1")];
    let out = run(&["inspect", "--json", &target], &log);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("sockmap: BPF verifier log:"), "{err}");
}

/// `task->tgid` is the initial namespace's pid: in another pid namespace
/// the scan must not be used.
#[test]
fn other_pid_namespace_falls_back() {
    if !bpf_capable("other_pid_namespace_falls_back")
        || !tool("other_pid_namespace_falls_back", "unshare")
    {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = format!(":{}", l.local_addr().expect("addr").port());
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        common::BIN,
        "inspect",
        "--json",
        &target,
    ])
    .env_remove("SOCKMAP_NO_BPF")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let out = run_bounded(cmd, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scan"]["method"], "proc");
    assert_eq!(v["scan"]["fallback_reason"], "pid-namespace");
}

/// `watch` loads the program once and keeps holders current with BPF
/// rescans: every sample has every holder, and a worker that dies
/// disappears from later samples.
#[test]
fn watch_keeps_holders_current_with_bpf() {
    use std::io::{BufRead, BufReader};
    if !bpf_capable("watch_keeps_holders_current_with_bpf") {
        return;
    }
    let serve = ServeProc::start(&["--workers", "3"]);
    let target = format!(":{}", serve.port);
    let out = run(
        &[
            "watch",
            &target,
            "--json",
            "-v",
            "--count",
            "4",
            "--interval",
            "20ms",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holders: bpf-task"), "{err}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    for l in &lines {
        assert_eq!(l["sockets"][0]["holders"], 3, "{l}");
    }

    // Up to 200 samples, 50 ms apart: one worker is killed after the first;
    // a later sample must show it gone (read until one does).
    let mut cmd = sockmap(&[
        "watch",
        &target,
        "--json",
        "--count",
        "200",
        "--interval",
        "50ms",
    ]);
    cmd.env_remove("SOCKMAP_NO_BPF");
    let mut watch = Group(cmd.spawn().expect("spawn watch"));
    let stdout = watch.0.stdout.take().expect("piped stdout");
    let mut samples = BufReader::new(stdout).lines().map(|l| {
        let l = l.expect("read watch");
        serde_json::from_str::<Value>(&l).expect("JSON line")["sockets"][0]["holders"].clone()
    });
    assert_eq!(samples.next(), Some(Value::from(3)));
    let victim = serve.children()[0];
    // SAFETY: kill(2) on a worker of the server this test started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let mut seen = Vec::new();
    for h in samples {
        seen.push(h);
        if seen.last() == Some(&Value::from(2)) {
            break;
        }
    }
    assert_eq!(
        seen.last(),
        Some(&Value::from(2)),
        "the dead worker never left: {seen:?}"
    );
}

/// With the BPF scan every tick of `watch` reads the holders again: a
/// process that starts holding the socket, and a holder that closes its
/// fd without exiting, show in the first sample taken after the change —
/// the /proc policy would show the first within 2 s and the second only
/// at the next full rescan.
#[test]
fn watch_ticks_see_a_new_holder_and_a_closed_fd_at_once() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::time::{SystemTime, UNIX_EPOCH};
    if !bpf_capable("watch_ticks_see_a_new_holder_and_a_closed_fd_at_once") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let fd = listener.as_raw_fd();
    let target = format!(":{port}");
    let mut cmd = sockmap(&[
        "watch",
        &target,
        "--json",
        "--scan",
        "bpf",
        "--count",
        "300",
        "--interval",
        "100ms",
    ]);
    cmd.env_remove("SOCKMAP_NO_BPF");
    let mut watch = Group(cmd.spawn().expect("spawn watch"));
    let stdout = watch.0.stdout.take().expect("piped stdout");
    // (time the sample was taken, distinct holding processes)
    let (tx, samples) = mpsc::channel::<(f64, u64)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).expect("JSON line");
            let sample = (
                v["time"].as_f64().expect("time"),
                v["sockets"][0]["holders"].as_u64().expect("holders"),
            );
            if tx.send(sample).is_err() {
                break;
            }
        }
    });
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64()
    };
    let next = || samples.recv_timeout(LIMIT).expect("watch prints a sample");
    // The holders of the first sample collected wholly after `t`: the one
    // after the first sample taken after `t` (a sample's collection starts
    // after the previous one was taken).
    let first_after = |t: f64| loop {
        if next().0 > t {
            return next().1;
        }
    };
    assert_eq!(next().1, 1, "only this test holds the listener");

    // A new process holding the listener as its fd 3, which closes it when
    // told and says so, then waits.
    let mut sh = Command::new("sh");
    sh.args(["-c", "read go; exec 3<&-; echo closed; read done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: dup2, fcntl and prctl are async-signal-safe.
    unsafe {
        sh.pre_exec(move || {
            // dup2 onto itself would leave close-on-exec set.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, 3) == 3
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut holder = Group(sh.spawn().expect("spawn sh"));
    let started = now();
    assert_eq!(
        first_after(started),
        2,
        "the new holder shows in the first sample taken after it started"
    );

    let mut stdin = holder.0.stdin.take().expect("piped stdin");
    writeln!(stdin, "go").expect("tell sh to close fd 3");
    let mut said = String::new();
    BufReader::new(holder.0.stdout.take().expect("piped stdout"))
        .read_line(&mut said)
        .expect("read sh");
    assert_eq!(said.trim(), "closed");
    let closed = now();
    assert_eq!(
        first_after(closed),
        1,
        "a holder that closed its fd (and still runs) is gone at once"
    );
    drop(stdin);
}

/// A process group of our own, SIGKILLed on drop.
struct Group(Child);

impl Group {
    /// A shell that forks and execs `true` over and over (bounded: 100k
    /// times, and killed on drop).
    fn churn() -> Group {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 100000 ]; do /bin/true; i=$((i+1)); done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Group(cmd.spawn().expect("spawn sh"))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}
