//! Details of the few processes that hold a matching socket: comm, ppid,
//! state, effective uid (and user name), command line. Read with the
//! `procfs` crate, through one `Process` handle per pid (an O_PATH fd on
//! /proc/PID, so every file comes from the same process).
//!
//! Owns: turning the fd scan's (pid, fd) pairs into `model::Holder`s, and
//! dropping holders that exited before their details could be read. Must
//! not: scan fd tables (that is `fdscan`), or change anything it reads.
//!
//! Non-UTF-8 names: any process may call itself `bad\xff\xfe`. The
//! crate's `Process::stat()` replaces such bytes (lossy comm) and its
//! `status()` and `cmdline()` fail outright on them (they read lines as
//! UTF-8), which used to blank PPID/UID/USER. So each file is read once as
//! bytes through the crate's process handle; the exact comm and arguments
//! come from those bytes, and the numbers from the crate's own parsers
//! (`Stat`, `Status`) run on the same bytes.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use procfs::process::{Process, Stat, Status};
use procfs::{FromRead, ProcError, ProcResult};

use crate::model::{Holder, Inode, ProcessState, RawText};

/// What reading one process's details gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Details {
    Alive(Info),
    /// Gone (or a zombie, whose fds are already closed): not a holder.
    Exited,
    /// The process is there but /proc/PID/stat could not be read or parsed.
    Unreadable,
}

/// The details of a live process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub comm: RawText,
    pub ppid: u32,
    pub state: ProcessState,
    pub euid: Option<u32>,
    pub cmdline: Option<Vec<RawText>>,
}

/// A /proc file's bytes, as the kernel wrote them.
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl FromRead for Bytes {
    fn from_read<R: Read>(mut r: R) -> ProcResult<Self> {
        let mut buf = Vec::with_capacity(512);
        r.read_to_end(&mut buf)?;
        Ok(Bytes(buf))
    }
}

/// ENOENT/ESRCH: the process (or thread) is gone.
pub(crate) fn is_gone(e: &ProcError) -> bool {
    match e {
        ProcError::NotFound(_) => true,
        ProcError::Io(io, _) => matches!(io.raw_os_error(), Some(libc::ESRCH | libc::ENOENT)),
        _ => false,
    }
}

/// The comm between the first '(' and the last ')' of /proc/PID/stat
/// (a comm may itself hold parentheses and spaces), exact bytes.
pub fn stat_comm(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(open + 1..close)
}

/// /proc/PID/cmdline → arguments. Each argument ends in NUL; a process
/// that rewrote its argv (setproctitle) may leave one unterminated string.
pub fn split_cmdline(bytes: &[u8]) -> Vec<RawText> {
    let body = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0).map(RawText::from).collect()
}

/// Parse the crate's way, on text where invalid UTF-8 cannot fail the parse.
fn parse_lossy<T: FromRead>(bytes: &[u8]) -> ProcResult<T> {
    T::from_read(String::from_utf8_lossy(bytes).as_bytes())
}

/// Read one process's details.
pub fn read_details(proc_root: &Path, pid: u32) -> Details {
    let process = match Process::new_with_root(proc_root.join(pid.to_string())) {
        Ok(p) => p,
        Err(e) if is_gone(&e) => return Details::Exited,
        Err(_) => return Details::Unreadable,
    };
    let raw = match process.read::<_, Bytes>("stat") {
        Ok(Bytes(b)) => b,
        Err(e) if is_gone(&e) => return Details::Exited,
        Err(_) => return Details::Unreadable,
    };
    let (Ok(stat), Some(comm)) = (parse_lossy::<Stat>(&raw), stat_comm(&raw)) else {
        return Details::Unreadable;
    };
    let state = ProcessState::from_letter(stat.state);
    if matches!(state, ProcessState::Zombie | ProcessState::Dead) {
        return Details::Exited;
    }
    let euid = process
        .read::<_, Bytes>("status")
        .ok()
        .and_then(|Bytes(b)| parse_lossy::<Status>(&b).ok())
        .map(|s| s.euid);
    let cmdline = process
        .read::<_, Bytes>("cmdline")
        .ok()
        .map(|Bytes(b)| split_cmdline(&b));
    Details::Alive(Info {
        comm: RawText::from(comm),
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        state,
        euid,
        cmdline,
    })
}

/// Turn the fd scan's (pid, fd) pairs into holders with details. A process
/// that exited since the scan is dropped: it no longer holds anything.
pub fn holders_with_details(
    proc_root: &Path,
    found: &HashMap<Inode, Vec<(u32, u32)>>,
) -> HashMap<Inode, Vec<Holder>> {
    let pids: HashSet<u32> = found.values().flatten().map(|(p, _)| *p).collect();
    let details: HashMap<u32, Details> = pids
        .into_iter()
        .map(|pid| (pid, read_details(proc_root, pid)))
        .collect();
    let mut users: HashMap<u32, Option<String>> = HashMap::new();
    for d in details.values() {
        if let Details::Alive(Info {
            euid: Some(uid), ..
        }) = d
        {
            users.entry(*uid).or_insert_with(|| {
                uzers::get_user_by_uid(*uid).map(|u| u.name().to_string_lossy().into_owned())
            });
        }
    }
    found
        .iter()
        .filter_map(|(inode, list)| {
            let mut holders: Vec<Holder> = list
                .iter()
                .filter_map(|&(pid, fd)| {
                    let holder = |info: Option<&Info>| Holder {
                        pid,
                        ppid: info.map(|i| i.ppid),
                        comm: info.map(|i| i.comm.clone()).unwrap_or_default(),
                        uid: info.and_then(|i| i.euid),
                        user: info
                            .and_then(|i| i.euid)
                            .and_then(|u| users.get(&u).cloned().flatten()),
                        fd,
                        state: info.map(|i| i.state),
                        cmdline: info.and_then(|i| i.cmdline.clone()),
                        netns: None,
                    };
                    match details.get(&pid)? {
                        // Read after the details: a child forked while we
                        // scanned held the fd until its exec closed it.
                        Details::Alive(_) if !still_holds(proc_root, pid, fd, *inode) => None,
                        Details::Alive(info) => Some(holder(Some(info))),
                        Details::Unreadable => Some(holder(None)),
                        Details::Exited => None,
                    }
                })
                .collect();
            if holders.is_empty() {
                return None;
            }
            holders.sort_by_key(|h| (h.pid, h.fd));
            Some((*inode, holders))
        })
        .collect()
}

/// Does `pid`'s fd `fd` still point to `inode`? One `readlinkat`, made
/// after the process's details were read, so a holder that closed the fd
/// (exec of a CLOEXEC fd, a close and reuse) in between is not reported
/// with details that belong to its later self. Unreadable: assume yes.
fn still_holds(proc_root: &Path, pid: u32, fd: u32, inode: Inode) -> bool {
    match std::fs::read_link(proc_root.join(format!("{pid}/fd/{fd}"))) {
        Ok(link) => {
            use std::os::unix::ffi::OsStrExt;
            super::fdscan::parse_socket_link(link.as_os_str().as_bytes()) == Some(inode.0)
        }
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_is_exact_between_first_open_and_last_close() {
        let stat = b"4238 (my (odd) srv) S 1 4238 4238 0 -1 4194560";
        assert_eq!(stat_comm(stat), Some(&b"my (odd) srv"[..]));
        let bad = b"77 (bad\xff\xfe) S 1 77 77 0 -1 0";
        assert_eq!(stat_comm(bad), Some(&b"bad\xff\xfe"[..]));
        assert_eq!(stat_comm(b"garbage"), None);
        // The crate's parser still finds state and ppid after invalid bytes.
        let s: Stat = parse_lossy(b"77 (bad\xff\xfe) T 5 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n").unwrap();
        assert_eq!((s.state, s.ppid), ('T', 5));
    }

    #[test]
    fn status_uids_survive_a_non_utf8_name() {
        let t = b"Name:\tbad\xff\xfe\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t77\nNgid:\t0\n\
Pid:\t77\nPPid:\t5\nTracerPid:\t0\nUid:\t1000\t1001\t1000\t1000\nGid:\t0\t0\t0\t0\n\
FDSize:\t64\nGroups:\t\nVmPeak:\t    1000 kB\nThreads:\t1\nSigQ:\t0/100\nSigPnd:\t0000000000000000\n\
ShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n\
SigCgt:\t0000000000000000\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
CapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n";
        let s: Status = parse_lossy(t).unwrap();
        assert_eq!((s.ruid, s.euid), (1000, 1001));
        // The crate's own reader gives up on the same bytes.
        assert!(Status::from_read(&t[..]).is_err());
    }

    #[test]
    fn cmdline_arguments() {
        let args = split_cmdline(b"php-fpm: pool www\0");
        assert_eq!(args, vec![RawText::from("php-fpm: pool www")]);
        let args = split_cmdline(b"sockmap\0serve\0\0--port\0");
        let want: Vec<RawText> = ["sockmap", "serve", "", "--port"]
            .iter()
            .map(|a| RawText::from(*a))
            .collect();
        assert_eq!(args, want, "an empty argument is kept");
        assert_eq!(
            split_cmdline(b"nginx: worker process"),
            vec![RawText::from("nginx: worker process")]
        );
        assert_eq!(split_cmdline(b""), Vec::<RawText>::new());
        assert_eq!(split_cmdline(b"a\xff\0"), vec![RawText(b"a\xff".to_vec())]);
    }

    #[test]
    fn details_of_this_process_and_of_a_gone_one() {
        let me = std::process::id();
        let Details::Alive(info) = read_details(Path::new("/proc"), me) else {
            panic!("this process is alive");
        };
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        assert_eq!(info.euid, Some(rustix::process::geteuid().as_raw()));
        let args: Vec<Vec<u8>> = std::env::args_os()
            .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).to_vec())
            .collect();
        let got: Vec<Vec<u8>> = info.cmdline.unwrap().into_iter().map(|a| a.0).collect();
        assert_eq!(got, args);
        // A pid above pid_max cannot exist.
        assert_eq!(read_details(Path::new("/proc"), u32::MAX), Details::Exited);
    }

    #[test]
    fn a_zombie_or_reaped_holder_is_dropped() {
        // SAFETY: the child only calls _exit.
        let pid = unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            pid
        };
        assert!(pid > 0);
        // SAFETY: waitid WNOWAIT peeks without reaping: a zombie now.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as u32,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            );
        }
        let proc = Path::new("/proc");
        let pid = pid as u32;
        assert_eq!(read_details(proc, pid), Details::Exited, "zombie");
        let me = std::process::id();
        // A real socket of ours, so the final readlink confirms it.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&l) as u32;
        let ino = rustix::fs::fstat(&l).expect("fstat").st_ino;
        let found = HashMap::from([
            (Inode(ino), vec![(me, fd), (pid, 3)]),
            (Inode(8), vec![(pid, 4)]),
        ]);
        let holders = holders_with_details(proc, &found);
        assert_eq!(holders.len(), 1, "a socket only the dead held is gone");
        let h = &holders[&Inode(ino)];
        assert_eq!(h.iter().map(|h| h.pid).collect::<Vec<_>>(), vec![me]);
        assert!(h[0].state.is_some() && !h[0].comm.is_empty());
        // An fd that no longer points to the socket is no holder.
        let moved = HashMap::from([(Inode(ino + 1), vec![(me, fd)])]);
        assert!(holders_with_details(proc, &moved).is_empty());
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
        assert_eq!(read_details(proc, pid), Details::Exited, "reaped");
    }
}
