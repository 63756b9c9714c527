//! Socket fixtures for the unix and UDP live tests (`mod sockfix;`): a
//! forked process that holds chosen fds, a temporary directory, raw
//! non-blocking unix clients, `ss` rows. Every process a fixture starts is
//! its own process group and is SIGKILLed and reaped on drop; every wait
//! is bounded. Only loopback addresses and the test's own temp directory.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::common;
use super::common::json::Report;

/// A forked copy of the test process that holds exactly `keep` (its other
/// fds closed, so other tests' sockets get no extra holder) and sleeps
/// until killed. Own process group; SIGKILL + reap on drop; dies with the
/// forking thread (PDEATHSIG).
pub struct Holder {
    pub pid: u32,
}

impl Holder {
    pub fn fork(keep: &[RawFd]) -> Holder {
        let mut keep: Vec<RawFd> = keep.to_vec();
        keep.sort_unstable();
        // SAFETY: the child calls only async-signal-safe syscalls (setpgid,
        // prctl, close_range, pause) before it is killed; it never returns.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            unsafe {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Close every fd but `keep` (and 0-2): the gaps between them.
                let mut lo: u32 = 3;
                for &fd in &keep {
                    let fd = fd as u32;
                    if fd > lo {
                        libc::syscall(libc::SYS_close_range, lo, fd - 1, 0);
                    }
                    lo = lo.max(fd + 1);
                }
                libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0);
                loop {
                    libc::pause();
                }
            }
        }
        Holder { pid: pid as u32 }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-(self.pid as i32), libc::SIGKILL);
            libc::kill(self.pid as i32, libc::SIGKILL);
            libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
        }
    }
}

/// A directory of our own under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sockmap-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A raw fd closed on drop.
pub struct Fd(pub RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

fn sockaddr_un(path: &[u8]) -> (libc::sockaddr_un, libc::socklen_t) {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    assert!(path.len() < addr.sun_path.len(), "unix path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + usize::from(path[0] != 0);
    (addr, len as libc::socklen_t)
}

/// A unix listener of `kind` (SOCK_STREAM, SOCK_SEQPACKET) bound to
/// `name` (a path, or a leading NUL for an abstract name), listen(backlog).
pub fn unix_listener(kind: i32, name: &[u8], backlog: i32) -> Fd {
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = Fd(fd);
        let (addr, len) = sockaddr_un(name);
        let r = libc::bind(fd.0, (&addr as *const libc::sockaddr_un).cast(), len);
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        assert_eq!(libc::listen(fd.0, backlog), 0, "listen");
        fd
    }
}

/// A non-blocking unix client of `kind` connecting to `name`: Ok(fd) if
/// the connection was queued, Err(errno) if refused (EAGAIN: queue full).
pub fn unix_connect_nonblocking(kind: i32, name: &[u8]) -> Result<Fd, i32> {
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        assert!(fd >= 0, "socket");
        let fd = Fd(fd);
        let (addr, len) = sockaddr_un(name);
        if libc::connect(fd.0, (&addr as *const libc::sockaddr_un).cast(), len) == 0 {
            Ok(fd)
        } else {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        }
    }
}

/// The socket inode of an fd.
pub fn inode_of(fd: RawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("readlink fd");
    let s = link.to_string_lossy();
    s.trim_start_matches("socket:[")
        .trim_end_matches(']')
        .parse()
        .unwrap_or_else(|_| panic!("fd {fd} is not a socket: {s}"))
}

pub fn path_bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

pub fn cstring(p: &Path) -> CString {
    CString::new(path_bytes(p)).expect("no NUL in path")
}

/// Run sockmap with `args`; (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::run_bounded(common::sockmap(args), Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sockmap inspect ARGS --json`, read strictly; panics unless it exits 0.
#[track_caller]
pub fn inspect_json(args: &[&str]) -> Report {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "sockmap {all:?} exited {code}: {err}");
    common::json::report(out.as_bytes())
}

/// Whether `ss` can be used: with `CI` set a missing `ss` fails the test,
/// elsewhere the comparison is skipped with a loud line.
pub fn ss_or_skip(what: &str) -> bool {
    common::require(
        common::ss_available(),
        &format!("`ss` (apt-get install iproute2) for {what}"),
    )
}

/// One `ss` row: the whitespace-split fields and the pids in `users:`.
#[derive(Debug)]
pub struct SsRow {
    pub fields: Vec<String>,
    pub pids: BTreeSet<u32>,
    pub line: String,
}

impl SsRow {
    /// The number after `KEY` in the row (`ino:123` style or `ino 123`).
    pub fn after(&self, key: &str) -> Option<u64> {
        let i = self.line.find(key)? + key.len();
        let digits: String = self.line[i..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

/// `ss ARGS` output rows (header dropped), with `pid=N` collected.
pub fn ss_rows(args: &[&str]) -> Vec<SsRow> {
    let out = Command::new("ss").args(args).output().expect("run ss");
    assert!(out.status.success(), "ss {args:?} failed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // ss wraps long rows (-e/-m details) onto an indented next line: join them.
    let mut rows: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        if line.starts_with(|c: char| c.is_whitespace()) {
            if let Some(last) = rows.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
                continue;
            }
        }
        rows.push(line.to_string());
    }
    rows.into_iter()
        .map(|line| {
            let pids = line
                .match_indices("pid=")
                .filter_map(|(i, _)| {
                    line[i + 4..]
                        .split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .collect();
            SsRow {
                fields: line.split_whitespace().map(String::from).collect(),
                pids,
                line,
            }
        })
        .collect()
}

/// A UDP socket bound to 127.0.0.1:`port` (0: any free port), with
/// SO_REUSEPORT if asked and SO_RCVBUF set to `rcvbuf` (the kernel doubles
/// it) when given.
pub fn udp_bound(port: u16, reuseport: bool, rcvbuf: Option<i32>) -> Fd {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let fd = Fd(fd);
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if reuseport {
            let r = libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&one as *const i32).cast(),
                len,
            );
            assert_eq!(r, 0, "SO_REUSEPORT");
        }
        if let Some(b) = rcvbuf {
            let r = libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&b as *const i32).cast(),
                len,
            );
            assert_eq!(r, 0, "SO_RCVBUF");
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let r = libc::bind(
            fd.0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        fd
    }
}

/// The local port of a bound inet socket.
pub fn local_port(fd: RawFd) -> u16 {
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let r = libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len);
        assert_eq!(r, 0, "getsockname");
        u16::from_be(addr.sin_port)
    }
}

/// A TCP listener on 127.0.0.1, any free port.
pub fn tcp_listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp")
}
