//! Holders and waiters as processes really are: a non-UTF-8 name, a
//! stopped process, processes exiting while they are read, epoll waiters
//! with and without EPOLLEXCLUSIVE, a scan by root without CAP_SYS_PTRACE
//! (needs root and `setpriv`).
//!
//! Every listener is this test's own, on 127.0.0.1 port 0; every child is
//! forked here, calls only async-signal-safe functions (prctl, accept,
//! epoll_*, pause, _exit), dies with us (PR_SET_PDEATHSIG) and is killed
//! and reaped on drop. The expected values come from the kernel through
//! the procfs crate (an implementation independent of sockmap's scan), or
//! from what this test itself set up.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

mod common;

use common::inspect_json;
use common::json::{self, Holder, ProcessState, RawText, Report, WaitHow, WarningKind};

use common::{serial, Children};

/// Fork one child that runs `body` (async-signal-safe only) and never
/// returns from it.
fn fork_child(body: impl Fn()) -> i32 {
    // SAFETY: the child calls only async-signal-safe functions, then _exit.
    unsafe {
        let parent = libc::getpid();
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            body();
            libc::_exit(0);
        }
        pid
    }
}

fn accept_forever(fd: RawFd) {
    loop {
        // SAFETY: accept/close on an fd the child inherited.
        unsafe {
            let c = libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut());
            if c >= 0 {
                libc::close(c);
            }
        }
    }
}

/// The system call `pid`'s main thread is blocked in, per the kernel
/// (procfs crate), if any.
fn blocked_in(pid: i32) -> Option<i64> {
    match procfs::process::Process::new(pid).ok()?.syscall().ok()? {
        procfs::process::Syscall::Blocked { syscall_number, .. } => Some(syscall_number),
        _ => None,
    }
}

fn state_of(pid: i32) -> Option<char> {
    Some(procfs::process::Process::new(pid).ok()?.stat().ok()?.state)
}

/// accept() or accept4(), from libc's numbers for this architecture.
// `c_long` is i32 on 32-bit targets: the conversion is not useless there.
#[allow(clippy::useless_conversion)]
fn is_accept(nr: Option<i64>) -> bool {
    [libc::SYS_accept, libc::SYS_accept4]
        .iter()
        .any(|&n| Some(i64::from(n)) == nr)
}

/// One of the epoll wait calls, from libc's numbers for this architecture.
#[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
fn is_epoll_wait(nr: Option<i64>) -> bool {
    let mut calls = vec![libc::SYS_epoll_pwait, libc::SYS_epoll_pwait2];
    #[cfg(target_arch = "x86_64")]
    calls.push(libc::SYS_epoll_wait);
    calls.iter().any(|&n| Some(i64::from(n)) == nr)
}

/// Add `fd` to a new epoll set (EPOLLIN, plus EPOLLEXCLUSIVE if asked)
/// and wait on it forever. Runs in a forked child: syscalls only.
fn epoll_forever(fd: RawFd, exclusive: bool) {
    // SAFETY: plain syscalls on fds the child owns or inherited.
    unsafe {
        let ep = libc::epoll_create1(0);
        let mut events = libc::EPOLLIN as u32;
        if exclusive {
            events |= libc::EPOLLEXCLUSIVE as u32;
        }
        let mut ev = libc::epoll_event { events, u64: 1 };
        if ep < 0 || libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) != 0 {
            libc::_exit(3);
        }
        loop {
            libc::epoll_wait(ep, &mut ev, 1, -1);
        }
    }
}

fn in_accept(pid: i32) -> bool {
    is_accept(blocked_in(pid)) && state_of(pid) == Some('S')
}

#[track_caller]
fn until(what: &str, f: impl FnMut() -> bool) {
    assert!(
        common::wait_until(Duration::from_secs(20), f),
        "not within 20 s: {what}"
    );
}

fn holder(v: &Report, pid: i32) -> &Holder {
    v.sockets[0].holder(pid as u32)
}

#[test]
fn a_non_utf8_name_keeps_its_owner_and_exact_bytes() {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    const NAME: &[u8] = b"bad\xff\xfe";
    let child = Children(vec![fork_child(|| {
        // SAFETY: prctl with a NUL-terminated buffer; pause forever.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"bad\xff\xfe".as_ptr());
            loop {
                libc::pause();
            }
        }
    })]);
    let pid = child.0[0];
    until("the child renamed itself", || {
        procfs::process::Process::new(pid)
            .and_then(|p| p.stat())
            .is_ok_and(|s| s.comm.starts_with("bad"))
    });
    let v = inspect_json(&format!(":{port}"));
    let h = holder(&v, pid);
    let RawText::Bytes(bytes) = &h.comm else {
        panic!("a non-UTF-8 comm is its bytes: {h:?}");
    };
    assert_eq!(bytes, NAME);
    // The details are still read: nobody hides its owner with a name.
    assert_eq!(h.ppid, Some(std::process::id()), "{h:?}");
    let euid = rustix::process::geteuid().as_raw();
    assert_eq!(h.uid, Some(euid), "{h:?}");
    assert!(h.user.is_some(), "{h:?}");
    assert_eq!(h.state, Some(ProcessState::Sleeping), "{h:?}");
    // The command line is the parent's (fork, no exec), exact.
    let mine: Vec<RawText> = std::env::args().map(RawText::Text).collect();
    assert_eq!(h.cmdline, Some(mine), "{h:?}");
    // The table shows the row with its ppid, not `?`.
    let out = common::run_bounded(
        common::sockmap(&["inspect", &format!(":{port}"), "--plain"]),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.split_whitespace().any(|f| f == pid.to_string()))
        .unwrap_or_else(|| panic!("a row for {pid}: {text}"));
    assert!(
        row.contains(&format!(" {pid} {} ", std::process::id())),
        "{row}"
    );
    // Invalid bytes are shown, not replaced: in --plain and in the table.
    assert!(row.contains("bad\\xff\\xfe"), "{row}");
    let table = common::run_bounded(
        common::sockmap(&["inspect", &format!(":{port}"), "--color", "never"]),
        Duration::from_secs(60),
    );
    let table = String::from_utf8(table.stdout).expect("the table is UTF-8");
    assert!(table.contains("bad\\xff\\xfe"), "{table}");
    assert!(!table.contains('\u{fffd}'), "{table}");
    drop(child);
}

#[test]
fn a_stopped_holder_is_shown_stopped_and_is_no_waiter() {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fd = l.as_raw_fd();
    let children = Children(vec![
        fork_child(|| accept_forever(fd)),
        fork_child(|| accept_forever(fd)),
    ]);
    let (stopped, running) = (children.0[0], children.0[1]);
    until("both children block in accept()", || {
        in_accept(stopped) && in_accept(running)
    });
    // SAFETY: our own child.
    unsafe { libc::kill(stopped, libc::SIGSTOP) };
    until("the child is stopped", || state_of(stopped) == Some('T'));
    // Still in accept() by its registers: only its state tells it apart.
    let nr = blocked_in(stopped);
    assert!(is_accept(nr), "{nr:?}");

    let v = inspect_json(&format!(":{port}"));
    assert_eq!(holder(&v, stopped).state, Some(ProcessState::Stopped));
    assert_eq!(holder(&v, running).state, Some(ProcessState::Sleeping));
    let waiters: BTreeSet<u32> = v.sockets[0].waiters.iter().map(|w| w.pid).collect();
    assert_eq!(
        waiters,
        BTreeSet::from([running as u32]),
        "only the sleeping child waits"
    );
    let verdict = &v.groups[0].verdict;
    assert!(
        !verdict.contains("threads blocked in accept()"),
        "one waiter is no wake-one story: {verdict}"
    );
    drop(children);
}

#[test]
fn holders_that_exit_while_being_read_are_dropped_not_reported() {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let me = std::process::id();
    // Two threads fork short-lived children (each holds the listener for
    // 2-16 ms, so some are alive at any time and some exit between the fd
    // scan and the detail read) and reap them, while inspect runs: at
    // most ~30 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let (stop, forks) = (stop.clone(), forks.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(30);
                let mut live = std::collections::VecDeque::new();
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                    let micros = 2000 + (i % 8) * 2000;
                    i += 1;
                    live.push_back(fork_child(|| {
                        // SAFETY: usleep is async-signal-safe.
                        unsafe { libc::usleep(micros) };
                    }));
                    forks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if live.len() >= 4 {
                        let pid = live.pop_front().unwrap_or(0);
                        // SAFETY: reap our own child.
                        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                    }
                }
                for pid in live {
                    // SAFETY: reap our own child.
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut runs = 0;
    let mut churn_seen = 0;
    while runs < 100 && started.elapsed() < Duration::from_secs(25) {
        let v = inspect_json(&format!(":{port}"));
        runs += 1;
        let s = &v.sockets[0];
        let holders = &s.holders;
        assert!(holders.iter().any(|h| h.pid == me), "{s:?}");
        churn_seen += holders.iter().filter(|h| h.pid != me).count();
        for h in holders {
            assert_ne!(h.comm, "?", "an exited holder is dropped: {h:?}");
            assert_ne!(h.comm, "", "an exited holder is dropped: {h:?}");
            assert!(h.state.is_some(), "{h:?}");
            assert!(h.ppid.is_some(), "{h:?}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
    let forks = forks.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{forks} forks, {runs} inspects, {churn_seen} live churn holders seen");
    assert!(
        forks > 100,
        "the churn ran ({forks} forks, {runs} inspects)"
    );
}

/// Three forked processes in epoll_wait on one inherited listener: with
/// EPOLLEXCLUSIVE the kernel wakes one per connection, without it all.
fn epoll_herd(exclusive: bool) {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fd = l.as_raw_fd();
    let children = Children(
        (0..3)
            .map(|_| fork_child(|| epoll_forever(fd, exclusive)))
            .collect(),
    );
    until("the children wait in epoll", || {
        children
            .0
            .iter()
            .all(|&p| is_epoll_wait(blocked_in(p)) && state_of(p) == Some('S'))
    });
    let v = inspect_json(&format!(":{port}"));
    let s = &v.sockets[0];
    let waiters = &s.waiters;
    let pids: BTreeSet<u32> = waiters.iter().map(|w| w.pid).collect();
    let want: BTreeSet<u32> = children.0.iter().map(|&p| p as u32).collect();
    assert_eq!(pids, want, "{s:?}");
    for w in waiters {
        assert_eq!(w.how, WaitHow::Epoll, "{w:?}");
        assert_eq!(w.exclusive, exclusive, "{w:?}");
    }
    let verdict = &v.groups[0].verdict;
    let herd = "3 processes wait in epoll without EPOLLEXCLUSIVE: each connection wakes all 3";
    assert_eq!(verdict.contains(herd), !exclusive, "{verdict}");
    // The table names how each holder waits.
    let out = common::run_bounded(
        common::sockmap(&["inspect", &format!(":{port}"), "--plain"]),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let cell = if exclusive {
        "epoll(exclusive)"
    } else {
        "epoll"
    };
    for &pid in &children.0 {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().any(|f| f == pid.to_string()))
            .unwrap_or_else(|| panic!("a row for {pid}: {text}"));
        let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        let at = header
            .iter()
            .position(|h| *h == "WAITING")
            .expect("a WAITING column");
        assert_eq!(row.split_whitespace().nth(at), Some(cell), "{row}");
    }
    drop(children);
}

#[test]
fn epoll_waiters_without_epollexclusive_all_wake() {
    epoll_herd(false);
}

#[test]
fn epoll_waiters_with_epollexclusive_wake_one() {
    epoll_herd(true);
}

#[test]
fn without_cap_sys_ptrace_unreadable_holders_are_counted_not_hidden() {
    if !common::require(
        common::is_root(),
        "root (to run sockmap as root without CAP_SYS_PTRACE)",
    ) || !common::require(
        common::have_command("setpriv", "--version"),
        "`setpriv` (apt-get install util-linux)",
    ) {
        return;
    }
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fd = l.as_raw_fd();
    let children = Children(vec![fork_child(|| accept_forever(fd))]);
    let child = children.0[0];
    until("the child blocks in accept()", || in_accept(child));
    // Root, but CAP_SYS_PTRACE dropped from the bounding set before exec:
    // /proc/PID/fd opens, its links do not (EACCES).
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--bounding-set", "-sys_ptrace", common::BIN])
        .args(["inspect", &format!(":{port}"), "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let out = common::run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json::report(&out.stdout);
    let holders = &v.sockets[0].holders;
    assert!(
        holders.iter().all(|h| h.pid != child as u32),
        "the child's fds cannot be read without CAP_SYS_PTRACE: {holders:?}"
    );
    let partly = v
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::ProcessesPartlyReadable)
        .unwrap_or_else(|| panic!("a warning says so: {:?}", v.warnings));
    // At least the child and this test process hold fds it may not read.
    assert!(partly.count >= 2, "{partly:?}");
    let g = &v.groups[0];
    assert!(!g.holders_complete, "{g:?}");
    assert!(g.verdict.contains("could not be read"), "{g:?}");
    drop(children);
}
