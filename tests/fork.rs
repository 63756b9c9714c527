//! The experiment itself, live: a listener forked into children that all
//! hold the inherited fd. `inspect` must show one inode with every pid and
//! fd, agreeing with `ss -p`. The children only call async-signal-safe
//! functions (accept, close, prctl), so forking from the multi-threaded
//! test harness is sound; they die with SIGKILL on drop (and with us, by
//! PR_SET_PDEATHSIG).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::Command;

mod common;

use common::inspect_json as inspect;
use common::json::{self, GroupKind, Report};

/// Tests in one binary run on parallel threads: a child forked by one test
/// would inherit the other test's listener (fork copies every fd; CLOEXEC
/// only acts on exec) and rightly show up as its holder. One at a time.
static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORKING.lock().unwrap_or_else(|e| e.into_inner())
}

struct Forked(Vec<i32>);

impl Drop for Forked {
    fn drop(&mut self) {
        for &pid in &self.0 {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Fork `n` children that accept (and close) on `fd` forever.
fn fork_acceptors(fd: i32, n: usize) -> Forked {
    let mut pids = Vec::new();
    for _ in 0..n {
        let parent = unsafe { libc::getpid() };
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
                loop {
                    let c = libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut());
                    if c >= 0 {
                        libc::close(c);
                    }
                }
            }
        }
        pids.push(pid);
    }
    Forked(pids)
}

fn holders_of(v: &Report) -> BTreeSet<(u64, u64)> {
    v.sockets[0]
        .holders
        .iter()
        .map(|h| (u64::from(h.pid), u64::from(h.fd)))
        .collect()
}

/// `users:(("name",pid=1,fd=3),...)` and `ino:N` from `ss -Htlnpe`.
fn ss_view(port: u16) -> Option<(u64, BTreeSet<(u64, u64)>)> {
    let out = Command::new("ss")
        .args(["-Htlnpe", &format!("sport = :{port}")])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "one listening socket: {text}");
    let ino = text
        .split("ino:")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut users = BTreeSet::new();
    for part in text.split("pid=").skip(1) {
        let pid = part.split(',').next()?.parse().ok()?;
        let fd = part
            .split("fd=")
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        users.insert((pid, fd));
    }
    Some((ino, users))
}

fn check_shared(addr: &str) {
    let _one_at_a_time = serial();
    if addr.starts_with('[') && !common::require(common::ipv6_loopback(), "an IPv6 loopback (::1)")
    {
        return;
    }
    let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let port = l.local_addr().unwrap().port();
    let fd = l.as_raw_fd();
    let children = fork_acceptors(fd, 2);
    let v = inspect(&format!(":{port}"));

    let socks = &v.sockets;
    assert_eq!(socks.len(), 1, "one socket, however many processes hold it");
    let me = std::process::id();
    let mut want: BTreeSet<(u64, u64)> =
        children.0.iter().map(|&p| (p as u64, fd as u64)).collect();
    want.insert((u64::from(me), fd as u64));
    assert_eq!(holders_of(&v), want);
    // ppid: each child points at this process.
    for h in &socks[0].holders {
        if h.pid != me {
            assert_eq!(h.ppid, Some(me));
        }
    }
    assert_eq!(v.groups[0].kind, GroupKind::Shared);
    assert_eq!(v.groups[0].holders, 3);
    let verdict = &v.groups[0].verdict;
    assert!(
        verdict.starts_with(&format!(
            "one socket shared by {}3 processes (fork",
            common::at_least()
        )),
        "{verdict}"
    );

    if common::require(common::ss_available(), "`ss` (apt-get install iproute2)") {
        let (ino, users) = ss_view(port).expect("ss -Htlnpe lists the listener");
        assert_eq!(socks[0].inode, ino, "same inode as ss");
        assert_eq!(holders_of(&v), users, "same holders as ss -p");
    }
    drop(children);
}

#[test]
fn forked_listener_is_one_inode_with_every_holder_ipv4() {
    check_shared("127.0.0.1:0");
}

#[test]
fn forked_listener_is_one_inode_with_every_holder_ipv6() {
    check_shared("[::1]:0");
}

#[test]
fn pid_target_lists_that_process_sockets() {
    let _one_at_a_time = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let children = fork_acceptors(l.as_raw_fd(), 1);
    let child = children.0[0];
    let v = inspect(&format!("pid:{child}"));
    let socks = &v.sockets;
    assert!(
        socks.iter().any(|s| s.local_port == Some(port)),
        "the child's inherited listener is listed: {socks:?}"
    );
    // Every holder of it is shown, not only the pid asked about.
    let s = socks.iter().find(|s| s.local_port == Some(port)).unwrap();
    assert_eq!(s.holders.len(), 2);
    // And by inode.
    let ino = s.inode;
    let v = inspect(&format!("inode:{ino}"));
    assert_eq!(v.sockets.len(), 1);
    assert_eq!(v.sockets[0].inode, ino);
    drop(children);
}

#[test]
fn check_passes_and_fails_on_a_forked_listener() {
    let _one_at_a_time = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let children = fork_acceptors(l.as_raw_fd(), 2);
    let target = format!(":{port}");
    let run = |args: &[&str]| {
        let mut all = vec!["check", target.as_str()];
        all.extend_from_slice(args);
        common::run_bounded(common::sockmap(&all), std::time::Duration::from_secs(60))
    };
    let me = std::process::id().to_string();
    let ok = run(&[
        "--shared",
        "--holders",
        "3",
        "--pid",
        &me,
        "--max-accept-ratio",
        "0.5",
    ]);
    // Decided (0), or unknown (4) while some process's fds are unreadable.
    let decided = common::holders_decided();
    assert_eq!(
        ok.status.code(),
        Some(if decided { 0 } else { 4 }),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = run(&["--holders", "2", "--reuseport"]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("FAIL holders: expected 2, found 3"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL reuseport")),
        "{text}"
    );
    let json = run(&["--holders", "2", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let v = json::check(&json.stdout);
    assert!(!v.ok);
    assert_eq!(v.assertions[0].name, "holders");
    drop(children);
    // Nothing listening any more → check fails (exit 1), never passes vacuously.
    drop(l);
    let gone = run(&[]);
    assert_eq!(gone.status.code(), Some(1));
}

#[test]
fn watch_picks_up_a_holder_forked_while_it_runs() {
    use std::io::BufRead;
    use std::time::Duration;
    let _one_at_a_time = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // 30 samples 200 ms apart (~6 s); new processes are scanned every 2 s.
    let child = common::sockmap(&[
        "watch",
        &format!(":{port}"),
        "--interval",
        "200ms",
        "--count",
        "30",
        "--json",
    ])
    .spawn()
    .expect("spawn sockmap watch");
    let mut watch = Watch(Some(child));
    let out = watch.child().stdout.take().expect("piped stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let holders = |line: &str| json::sample(line).sockets[0].holders;
    // Fork only once the first sample is out, so it saw one holder.
    let first = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("watch prints its first sample");
    assert_eq!(holders(&first), 1, "{first}");
    let children = fork_acceptors(l.as_raw_fd(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut rest = Vec::new();
    while let Ok(line) =
        lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        rest.push(holders(&line));
    }
    let status = watch.wait(Duration::from_secs(30));
    assert!(status.success(), "watch exited with {status}");
    assert_eq!(rest.len(), 29, "{rest:?}");
    assert_eq!(
        *rest.last().unwrap(),
        2,
        "the forked child was found: {rest:?}"
    );
    drop(children);
}

/// A sockmap child whose process group is killed however the test ends.
struct Watch(Option<std::process::Child>);

impl Watch {
    fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("not reaped yet")
    }

    /// Wait (bounded) for it to exit by itself, then reap it.
    fn wait(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let exited = common::wait_exited(self.child().id(), limit);
        assert!(exited, "sockmap did not exit within {limit:?}");
        let mut child = self.0.take().expect("not reaped yet");
        child.wait().expect("wait for sockmap")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            // Unreaped leader: its process group id cannot have been reused.
            common::kill_group(child);
            let _ = child.wait();
        }
    }
}
