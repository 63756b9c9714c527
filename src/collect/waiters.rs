//! Threads blocked right now waiting for a socket: in `accept()` on it, in
//! `epoll_wait()` on an epoll set that contains it, or in `poll()`/
//! `select()` on it. Read from /proc/PID/task/TID/syscall (needs
//! ptrace-attach rights: root or the same user), epoll fdinfo, and for
//! poll/select the caller's fd array in /proc/PID/mem.
//!
//! This makes the kernel's wake-one accept visible: two processes blocked
//! in accept() on one inode are two waiters on one queue.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::model::{Holder, Inode, WaitHow, Waiter};

/// System call numbers of this architecture that wait for a socket.
#[derive(Debug, Clone, Copy)]
struct Nrs {
    accept: &'static [i64],
    epoll: &'static [i64],
    poll: &'static [i64],
    select: &'static [i64],
}

#[cfg(target_arch = "x86_64")]
const NRS: Nrs = Nrs {
    accept: &[43, 288],      // accept, accept4
    epoll: &[232, 281, 441], // epoll_wait, epoll_pwait, epoll_pwait2
    poll: &[7, 271],         // poll, ppoll
    select: &[23, 270],      // select, pselect6
};
#[cfg(target_arch = "aarch64")]
const NRS: Nrs = Nrs {
    accept: &[202, 242],
    epoll: &[22, 441],
    poll: &[73],
    select: &[72],
};
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NRS: Nrs = Nrs {
    accept: &[],
    epoll: &[],
    poll: &[],
    select: &[],
};

/// A task's current system call: number and the first three arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub nr: i64,
    pub args: [u64; 3],
}

/// Parse /proc/PID/task/TID/syscall: `NR 0xARG0 ... 0xARG5 0xSP 0xPC`;
/// `running` or `-1 SP PC` (not in a syscall) give `None`.
pub fn parse_syscall(text: &str) -> Option<Syscall> {
    let mut it = text.split_ascii_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let mut args = [0u64; 3];
    for a in &mut args {
        let s = it.next()?;
        *a = u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()?;
    }
    Some(Syscall { nr, args })
}

/// Parse an epoll fd's fdinfo: every `tfd: N ... ino:HEX` target → (fd, inode).
pub fn parse_epoll_fdinfo(text: &str) -> Vec<(u32, u64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("tfd:")?;
            let fd = rest.split_ascii_whitespace().next()?.parse().ok()?;
            let ino = rest
                .split_ascii_whitespace()
                .find_map(|w| w.strip_prefix("ino:"))?;
            Some((fd, u64::from_str_radix(ino, 16).ok()?))
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

/// Find the threads of the holders' processes that wait for these sockets.
pub fn find_waiters(
    proc_root: &Path,
    holders: &HashMap<Inode, Vec<Holder>>,
) -> HashMap<Inode, Vec<Waiter>> {
    // pid → (fd → inode) for the sockets of interest.
    let mut by_pid: HashMap<u32, HashMap<u32, Inode>> = HashMap::new();
    for (inode, hs) in holders {
        for h in hs {
            by_pid.entry(h.pid).or_default().insert(h.fd, *inode);
        }
    }
    let mut out: HashMap<Inode, Vec<Waiter>> = HashMap::new();
    for (pid, fds) in &by_pid {
        let pid_dir = proc_root.join(pid.to_string());
        let Ok(tasks) = std::fs::read_dir(pid_dir.join("task")) else {
            continue;
        };
        let mut epoll_cache: HashMap<u64, Vec<(u32, u64)>> = HashMap::new();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(sc) = std::fs::read_to_string(task.path().join("syscall"))
                .ok()
                .and_then(|t| parse_syscall(&t))
            else {
                continue;
            };
            let mut push = |inode: Inode, how: WaitHow, fd: u32| {
                out.entry(inode).or_default().push(Waiter {
                    pid: *pid,
                    tid,
                    how,
                    fd,
                });
            };
            if NRS.accept.contains(&sc.nr) {
                if let Some(inode) = u32::try_from(sc.args[0]).ok().and_then(|fd| fds.get(&fd)) {
                    push(*inode, WaitHow::Accept, sc.args[0] as u32);
                }
            } else if NRS.epoll.contains(&sc.nr) {
                let epfd = sc.args[0];
                let targets = epoll_cache.entry(epfd).or_insert_with(|| {
                    std::fs::read_to_string(pid_dir.join(format!("fdinfo/{epfd}")))
                        .map(|t| parse_epoll_fdinfo(&t))
                        .unwrap_or_default()
                });
                for (_, ino) in targets.iter() {
                    if let Some(inode) = fds.values().find(|i| i.0 == *ino) {
                        push(*inode, WaitHow::Epoll, epfd as u32);
                    }
                }
            } else if NRS.poll.contains(&sc.nr) && sc.args[1] <= MAX_POLL_FDS {
                let polled = read_mem(&pid_dir, sc.args[0], sc.args[1] as usize * 8)
                    .map(|b| parse_pollfds(&b))
                    .unwrap_or_default();
                for fd in polled {
                    if let Some(inode) = u32::try_from(fd).ok().and_then(|f| fds.get(&f)) {
                        push(*inode, WaitHow::Poll, fd as u32);
                    }
                }
            } else if NRS.select.contains(&sc.nr) && sc.args[0] <= 1024 && sc.args[1] != 0 {
                let nfds = sc.args[0] as usize;
                let set = read_mem(&pid_dir, sc.args[1], nfds.div_ceil(64) * 8)
                    .map(|b| parse_fd_set(&b, nfds))
                    .unwrap_or_default();
                for fd in set {
                    if let Some(inode) = u32::try_from(fd).ok().and_then(|f| fds.get(&f)) {
                        push(*inode, WaitHow::Select, fd as u32);
                    }
                }
            }
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|w| (w.pid, w.tid));
        list.dedup();
    }
    out
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
    fn syscall_lines() {
        // accept4(5, ...) as seen on x86_64.
        let s =
            parse_syscall("288 0x5 0x7ffc1c 0x7ffc18 0x80800 0x0 0x0 0x7ffc00 0x7f1234\n").unwrap();
        assert_eq!(
            s,
            Syscall {
                nr: 288,
                args: [5, 0x7ffc1c, 0x7ffc18]
            }
        );
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffc00 0x7f1234\n"), None);
        assert_eq!(parse_syscall(""), None);
    }

    #[test]
    fn epoll_fdinfo() {
        let t = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n\
tfd:        5 events:       19 data:                5  pos:0 ino:1c78 sdev:8\n\
tfd:        7 events:       19 data:                7  pos:0 ino:2a sdev:8\n";
        assert_eq!(parse_epoll_fdinfo(t), vec![(5, 0x1c78), (7, 0x2a)]);
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
