//! Threads blocked right now waiting for a socket: in `accept()` on it, in
//! `epoll_wait()` on an epoll set that contains it, or in `poll()`/
//! `select()` on it. Threads and their system calls come from the procfs
//! crate (`tasks()`, `Task::stat()`, `Task::syscall()`; the syscall file
//! needs ptrace-attach rights: root or the same user, and a refusal is
//! counted, not hidden); the epoll set from its fdinfo; for poll/select
//! the caller's fd array from /proc/PID/mem (no crate decodes those).
//!
//! This makes the kernel's wake-one accept visible: two processes blocked
//! in accept() on one inode are two waiters on one queue.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use procfs::process::{Process, Syscall};
use procfs::ProcError;

use super::process::Bytes;
use crate::model::{Holder, Inode, ProcessState, WaitHow, Waiter};

/// System call numbers that wait for a socket, from libc for the target
/// architecture. Some calls exist only on some architectures: the generic
/// table (aarch64, riscv, loongarch, csky) has no `poll`, `select` or
/// `epoll_wait`; 32-bit x86, m68k and s390x have no direct `accept` (their
/// `socketcall` keeps its arguments in memory and is not decoded here;
/// `accept4` is direct everywhere). The `_time64` variants of 32-bit
/// targets are not listed.
type Nr = libc::c_long;

const ACCEPT: &[Nr] = &[
    libc::SYS_accept4,
    #[cfg(not(any(target_arch = "x86", target_arch = "m68k", target_arch = "s390x")))]
    libc::SYS_accept,
];

const EPOLL: &[Nr] = &[
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    #[cfg(not(any(
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "riscv32",
        target_arch = "loongarch64",
        target_arch = "csky"
    )))]
    libc::SYS_epoll_wait,
];

/// `(struct pollfd *fds, nfds_t nfds, ...)`
const POLL: &[Nr] = &[
    libc::SYS_ppoll,
    #[cfg(not(any(
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "riscv32",
        target_arch = "loongarch64",
        target_arch = "csky"
    )))]
    libc::SYS_poll,
];

/// `(int nfds, fd_set *readfds, ...)`. On 32-bit x86 `SYS_select` is the
/// old one-struct-argument form, so the new-style `_newselect` is listed
/// where it exists.
const SELECT: &[Nr] = &[
    libc::SYS_pselect6,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_select,
    #[cfg(any(
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    libc::SYS__newselect,
];

// `c_long` is i32 on 32-bit targets: the conversion is not useless there.
#[allow(clippy::useless_conversion)]
fn is(list: &[Nr], nr: i64) -> bool {
    list.iter().any(|&n| i64::from(n) == nr)
}

/// A task's current system call: number and the first three arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub nr: i64,
    pub args: [u64; 3],
}

/// The call a task is blocked in, from the crate's parse of
/// /proc/PID/task/TID/syscall; `None` when running or not in a system
/// call (`-1 SP PC`).
pub fn blocked_call(sc: &Syscall) -> Option<Call> {
    match *sc {
        Syscall::Blocked {
            syscall_number,
            argument_registers: [a0, a1, a2, ..],
            ..
        } if syscall_number >= 0 => Some(Call {
            nr: syscall_number,
            args: [a0, a1, a2],
        }),
        _ => None,
    }
}

/// One target of an epoll set, from its fdinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollTarget {
    pub fd: u32,
    pub inode: u64,
    /// The event mask it was added with (EPOLLIN, EPOLLEXCLUSIVE, ...).
    pub events: u32,
}

impl EpollTarget {
    pub fn exclusive(&self) -> bool {
        self.events & (libc::EPOLLEXCLUSIVE as u32) != 0
    }
}

/// Parse an epoll fd's fdinfo: every
/// `tfd: FD events: HEX data: HEX pos:N ino:HEX sdev:HEX` line.
pub fn parse_epoll_fdinfo(text: &str) -> Vec<EpollTarget> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("tfd:")?;
            let mut words = rest.split_ascii_whitespace();
            let fd = words.next()?.parse().ok()?;
            let events = words
                .clone()
                .skip_while(|w| *w != "events:")
                .nth(1)
                .and_then(|e| u32::from_str_radix(e, 16).ok())?;
            let ino = words.find_map(|w| w.strip_prefix("ino:"))?;
            Some(EpollTarget {
                fd,
                inode: u64::from_str_radix(ino, 16).ok()?,
                events,
            })
        })
        .collect()
}

/// Decode `struct pollfd { int fd; short events; short revents; }[n]`.
pub fn parse_pollfds(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(8)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Decode an `fd_set` bitmap of `nfds` bits → the fds set in it.
pub fn parse_fd_set(bytes: &[u8], nfds: usize) -> Vec<i32> {
    (0..nfds.min(bytes.len() * 8))
        .filter(|&i| bytes[i / 8] & (1 << (i % 8)) != 0)
        .map(|i| i as i32)
        .collect()
}

const MAX_POLL_FDS: u64 = 65_536;

/// Waiting threads per socket, and how many processes' threads could
/// not be read.
#[derive(Debug, Clone, Default)]
pub struct Waiters {
    pub by_inode: HashMap<Inode, Vec<Waiter>>,
    /// Holder processes whose threads' system calls (or epoll sets) we
    /// may not read (EACCES: needs ptrace-attach rights, i.e. root or the
    /// same user where Yama allows it): their waiters may be missing.
    pub denied: usize,
}

/// Find the threads of the holders' processes that wait for these sockets.
/// Only sleeping threads count: a stopped (SIGSTOP) or traced thread still
/// shows the call it was in, but takes no connection until continued.
pub fn find_waiters(proc_root: &Path, holders: &HashMap<Inode, Vec<Holder>>) -> Waiters {
    // pid → (fd → inode) for the sockets of interest.
    let mut by_pid: HashMap<u32, HashMap<u32, Inode>> = HashMap::new();
    for (inode, hs) in holders {
        for h in hs {
            by_pid.entry(h.pid).or_default().insert(h.fd, *inode);
        }
    }
    let mut out = Waiters::default();
    for (pid, fds) in &by_pid {
        match process_waiters(proc_root, *pid, fds, &mut out.by_inode) {
            Ok(()) => {}
            Err(ProcError::PermissionDenied(_)) => out.denied += 1,
            Err(_) => {} // gone, or a file we could not parse: nothing waits there
        }
    }
    for list in out.by_inode.values_mut() {
        list.sort_by_key(|w| (w.pid, w.tid));
        list.dedup();
    }
    out
}

/// One process's waiters into `out`. PermissionDenied if any of its
/// threads' calls could not be read (those found are still kept).
fn process_waiters(
    proc_root: &Path,
    pid: u32,
    fds: &HashMap<u32, Inode>,
    out: &mut HashMap<Inode, Vec<Waiter>>,
) -> Result<(), ProcError> {
    let pid_dir = proc_root.join(pid.to_string());
    let process = Process::new_with_root(pid_dir.clone())?;
    let mut denied = None;
    let mut epoll_sets: HashMap<u64, Vec<EpollTarget>> = HashMap::new();
    for task in process.tasks()? {
        let Ok(task) = task else {
            continue; // the thread exited
        };
        let tid = u32::try_from(task.tid).unwrap_or(0);
        let sleeping = task
            .stat()
            .is_ok_and(|st| ProcessState::from_letter(st.state) == ProcessState::Sleeping);
        if !sleeping {
            continue;
        }
        let call = match task.syscall() {
            Ok(sc) => blocked_call(&sc),
            Err(e @ ProcError::PermissionDenied(_)) => {
                denied = Some(e);
                continue;
            }
            Err(_) => None,
        };
        let Some(call) = call else {
            continue;
        };
        let mut push = |inode: Inode, how: WaitHow, fd: u32| {
            out.entry(inode)
                .or_default()
                .push(Waiter { pid, tid, how, fd });
        };
        let socket_fd = |fd: u64| {
            u32::try_from(fd)
                .ok()
                .and_then(|f| Some((f, *fds.get(&f)?)))
        };
        if is(ACCEPT, call.nr) {
            if let Some((fd, inode)) = socket_fd(call.args[0]) {
                push(inode, WaitHow::Accept, fd);
            }
        } else if is(EPOLL, call.nr) {
            let epfd = call.args[0];
            let targets = epoll_sets.entry(epfd).or_insert_with(|| {
                match process.read::<_, Bytes>(format!("fdinfo/{epfd}")) {
                    Ok(Bytes(b)) => parse_epoll_fdinfo(&String::from_utf8_lossy(&b)),
                    Err(e @ ProcError::PermissionDenied(_)) => {
                        denied = Some(e);
                        Vec::new()
                    }
                    // Gone, or closed since: nothing waits there.
                    Err(_) => Vec::new(),
                }
            });
            for t in targets.iter() {
                // The set names the socket by inode (its fd there may be a dup).
                if let Some(inode) = fds.values().find(|i| i.0 == t.inode) {
                    let how = WaitHow::Epoll {
                        exclusive: t.exclusive(),
                    };
                    push(*inode, how, epfd as u32);
                }
            }
        } else if is(POLL, call.nr) && call.args[1] <= MAX_POLL_FDS {
            let polled = read_mem(&pid_dir, call.args[0], call.args[1] as usize * 8)
                .map(|b| parse_pollfds(&b))
                .unwrap_or_default();
            for fd in polled {
                if let Some((fd, inode)) = u64::try_from(fd).ok().and_then(socket_fd) {
                    push(inode, WaitHow::Poll, fd);
                }
            }
        } else if is(SELECT, call.nr) && call.args[0] <= 1024 && call.args[1] != 0 {
            let nfds = call.args[0] as usize;
            let set = read_mem(&pid_dir, call.args[1], nfds.div_ceil(64) * 8)
                .map(|b| parse_fd_set(&b, nfds))
                .unwrap_or_default();
            for fd in set {
                if let Some((fd, inode)) = u64::try_from(fd).ok().and_then(socket_fd) {
                    push(inode, WaitHow::Select, fd);
                }
            }
        }
    }
    denied.map_or(Ok(()), Err)
}

fn read_mem(pid_dir: &Path, addr: u64, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return None;
    }
    let f = std::fs::File::open(pid_dir.join("mem")).ok()?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, addr).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines_through_the_crate() {
        use procfs::FromRead;
        // accept4(5, ...) as seen on x86_64.
        let line = "288 0x5 0x7ffc1c 0x7ffc18 0x80800 0x0 0x0 0x7ffc00 0x7f1234\n";
        let sc = Syscall::from_read(line.as_bytes()).unwrap();
        assert_eq!(
            blocked_call(&sc),
            Some(Call {
                nr: 288,
                args: [5, 0x7ffc1c, 0x7ffc18]
            })
        );
        let running = Syscall::from_read(&b"running\n"[..]).unwrap();
        assert_eq!(blocked_call(&running), None);
        // Blocked outside a system call: the crate fails to parse it; either
        // way it is no call of ours.
        let outside = Syscall::from_read(&b"-1 0x7ffc00 0x7f1234\n"[..]);
        assert!(outside.map_or(true, |sc| blocked_call(&sc).is_none()));
    }

    #[test]
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    fn syscall_numbers_come_from_libc() {
        assert!(is(ACCEPT, i64::from(libc::SYS_accept4)));
        assert!(is(EPOLL, i64::from(libc::SYS_epoll_pwait)));
        assert!(is(POLL, i64::from(libc::SYS_ppoll)));
        assert!(is(SELECT, i64::from(libc::SYS_pselect6)));
        #[cfg(target_arch = "x86_64")]
        {
            // The kernel's x86_64 table, independently of libc.
            for (list, nrs) in [
                (ACCEPT, &[43, 288][..]),
                (EPOLL, &[232, 281, 441][..]),
                (POLL, &[7, 271][..]),
                (SELECT, &[23, 270][..]),
            ] {
                let mut got: Vec<i64> = list.iter().map(|&n| i64::from(n)).collect();
                got.sort_unstable();
                assert_eq!(got, nrs);
            }
        }
    }

    #[test]
    fn epoll_fdinfo() {
        let t = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n\
tfd:        5 events:       19 data:                5  pos:0 ino:1c78 sdev:8\n\
tfd:        7 events: 10000019 data:                7  pos:0 ino:2a sdev:8\n";
        let got = parse_epoll_fdinfo(t);
        assert_eq!(
            got,
            vec![
                EpollTarget {
                    fd: 5,
                    inode: 0x1c78,
                    events: 0x19
                },
                EpollTarget {
                    fd: 7,
                    inode: 0x2a,
                    events: 0x1000_0019
                }
            ]
        );
        assert!(!got[0].exclusive());
        assert!(got[1].exclusive(), "bit 28, EPOLLEXCLUSIVE");
    }

    #[test]
    fn poll_and_select_arrays() {
        let mut b = Vec::new();
        for fd in [3i32, -1, 9] {
            b.extend_from_slice(&fd.to_ne_bytes());
            b.extend_from_slice(&[1, 0, 0, 0]);
        }
        assert_eq!(parse_pollfds(&b), vec![3, -1, 9]);
        let mut set = [0u8; 8];
        set[0] = 0b0010_1000; // fds 3 and 5
        set[1] = 0b0000_0001; // fd 8
        assert_eq!(parse_fd_set(&set, 9), vec![3, 5, 8]);
        assert_eq!(parse_fd_set(&set, 4), vec![3]);
    }
}
