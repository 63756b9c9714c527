//! The /proc scan: which (pid, fd) holds which socket inode. The details
//! of the few processes found are `process`'s job (procfs crate).
//!
//! Hand-written on rustix rather than the procfs crate: the scan reads one
//! symlink per fd of every process, and the crate's per-fd objects cost 4
//! syscalls and ~5 allocations per fd and hide EACCES. Here: `openat` +
//! `getdents64` into a reused buffer + `readlinkat` into a stack buffer, no
//! allocation per fd, split over `available_parallelism()` threads, and
//! every error is seen (ENOENT/ESRCH = exited, skipped; EACCES = counted).

use std::collections::HashMap;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat, readlinkat_raw, statat, AtFlags, Mode, OFlags, RawDir, CWD};
use rustix::io::Errno;

use crate::model::Inode;

/// What a scan found.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    /// Every (pid, fd) holding each wanted inode.
    pub found: HashMap<Inode, Vec<(u32, u32)>>,
    /// Processes whose fd table we were not allowed to read.
    pub denied: usize,
    /// Processes whose fd table was read.
    pub scanned: usize,
    /// Each scanned process's network namespace (`stat /proc/PID/ns/net`),
    /// read in the same per-process step as its fd table: enumerating
    /// namespaces costs one `statat` per process, not a second /proc walk.
    pub netns: HashMap<u32, NsKey>,
    /// Processes whose network namespace could not be read (EACCES).
    pub netns_denied: usize,
    /// Processes whose fd table could be listed but some of whose fds
    /// could not be resolved (EACCES on readlinkat: root without
    /// CAP_SYS_PTRACE, or a process that gained privileges): their
    /// holders may be missing.
    pub partial: usize,
}

/// A network namespace's identity: the nsfs device and inode of
/// `/proc/PID/ns/net` (what `ip netns identify` and `lsns` compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsKey {
    pub dev: u64,
    pub ino: u64,
}

/// Parse a `/proc/PID/fd/N` link target `socket:[12345]` → 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    parse_decimal(link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
}

/// Plain ASCII decimal, no sign, no overflow: pid and fd names, inodes.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &b| {
        b.is_ascii_digit().then_some(())?;
        v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn parse_u32(name: &[u8]) -> Option<u32> {
    parse_decimal(name).and_then(|v| u32::try_from(v).ok())
}

fn open_dir(dirfd: impl AsFd, path: &CStr) -> Result<OwnedFd, Errno> {
    openat(
        dirfd,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// Every numeric entry of /proc: the pids.
pub fn list_pids(proc_root: &Path) -> std::io::Result<Vec<u32>> {
    let proc = open_dir(CWD, &cstr_path(proc_root)?)?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut dir = RawDir::new(&proc, &mut buf);
    let mut pids = Vec::with_capacity(1024);
    while let Some(entry) = dir.next() {
        if let Some(pid) = parse_u32(entry?.file_name().to_bytes()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn cstr_path(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path with NUL"))
}

/// Scan the fd tables of `pids` (all of /proc when `None`) for links to
/// the inodes `want` accepts. `want` is called once per socket fd, so a
/// `HashSet` lookup or `|_| true` both work.
pub fn scan_holders(
    proc_root: &Path,
    pids: Option<&[u32]>,
    want: &(dyn Fn(u64) -> bool + Sync),
) -> std::io::Result<Scan> {
    let listed;
    let pids = match pids {
        Some(p) => p,
        None => {
            listed = list_pids(proc_root)?;
            &listed
        }
    };
    let proc = open_dir(CWD, &cstr_path(proc_root)?)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pids.len().div_ceil(64))
        .max(1);
    if threads == 1 {
        let mut scan = Scan::default();
        let mut dents = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
        scan_pids(&proc, pids, want, &mut dents, &mut scan);
        return Ok(scan);
    }
    // Threads take small batches from a shared counter: one contiguous
    // chunk per thread left one thread idle while the other still had the
    // fd-heavy processes (measured 5-9 % slower, BENCHMARKS.md).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<Scan> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (proc, next) = (&proc, &next);
                s.spawn(move || {
                    let mut scan = Scan::default();
                    let mut dents = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
                    loop {
                        let start = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        if start >= pids.len() {
                            return scan;
                        }
                        let end = (start + BATCH).min(pids.len());
                        scan_pids(proc, &pids[start..end], want, &mut dents, &mut scan);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut total = Scan::default();
    for part in parts {
        total.denied += part.denied;
        total.scanned += part.scanned;
        total.netns_denied += part.netns_denied;
        total.netns.extend(part.netns);
        total.partial += part.partial;
        for (inode, mut holders) in part.found {
            total.found.entry(inode).or_default().append(&mut holders);
        }
    }
    Ok(total)
}

/// Pids a scan thread takes at a time.
const BATCH: usize = 16;

fn scan_pids(
    proc: &OwnedFd,
    pids: &[u32],
    want: &(dyn Fn(u64) -> bool + Sync),
    dents: &mut [MaybeUninit<u8>],
    scan: &mut Scan,
) {
    let mut path = [0u8; 32];
    for &pid in pids {
        // "PID/ns/net\0", then "PID/fd\0", without allocating.
        let digits = itoa_into(&mut path, pid);
        let Some(ns_path) = pid_path(&mut path, digits, b"/ns/net\0") else {
            continue;
        };
        match statat(proc, ns_path, AtFlags::empty()) {
            Ok(st) => {
                let key = NsKey {
                    dev: st.st_dev,
                    ino: st.st_ino,
                };
                scan.netns.insert(pid, key);
            }
            Err(Errno::ACCESS) | Err(Errno::PERM) => scan.netns_denied += 1,
            Err(_) => {} // exited, or a kernel without network namespaces
        }
        let Some(cpath) = pid_path(&mut path, digits, b"/fd\0") else {
            continue;
        };
        let fd_dir = match open_dir(proc, cpath) {
            Ok(fd) => fd,
            Err(Errno::ACCESS) | Err(Errno::PERM) => {
                scan.denied += 1;
                continue;
            }
            Err(_) => continue, // ENOENT/ESRCH: the process exited.
        };
        scan.scanned += 1;
        let mut dir = RawDir::new(&fd_dir, &mut *dents);
        let mut link = [0u8; 64];
        let mut fd_denied = false;
        while let Some(entry) = dir.next() {
            let Ok(entry) = entry else {
                break; // the process exited while we read its fd table
            };
            let name = entry.file_name();
            let Some(fd) = parse_u32(name.to_bytes()) else {
                continue;
            };
            let n = match readlinkat_raw(&fd_dir, name, &mut link[..]) {
                Ok(n) => n,
                Err(Errno::ACCESS) => {
                    fd_denied = true;
                    continue;
                }
                Err(_) => continue, // the fd was closed meanwhile
            };
            if let Some(inode) = parse_socket_link(&link[..n.min(link.len())]) {
                if want(inode) {
                    scan.found.entry(Inode(inode)).or_default().push((pid, fd));
                }
            }
        }
        scan.partial += usize::from(fd_denied);
    }
}

/// `buf[..digits]` holds the pid: append `tail` (NUL-terminated) after it.
fn pid_path<'a>(buf: &'a mut [u8; 32], digits: usize, tail: &[u8]) -> Option<&'a CStr> {
    let end = digits + tail.len();
    buf.get_mut(digits..end)?.copy_from_slice(tail);
    CStr::from_bytes_with_nul(&buf[..end]).ok()
}

fn itoa_into(buf: &mut [u8; 32], mut v: u32) -> usize {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[i] = tmp[n - 1 - i];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[7288]"), Some(7288));
        assert_eq!(parse_socket_link(b"socket:[4294967295]"), Some(4294967295));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
        assert_eq!(parse_socket_link(b"pipe:[7288]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[7288"), None);
        assert_eq!(parse_socket_link(b"socket:[99999999999999999999999]"), None);
    }

    #[test]
    fn pid_paths() {
        let mut b = [0u8; 32];
        assert_eq!(itoa_into(&mut b, 0), 1);
        assert_eq!(&b[..1], b"0");
        assert_eq!(itoa_into(&mut b, 4194304), 7);
        assert_eq!(&b[..7], b"4194304");
    }

    #[test]
    fn scan_finds_our_own_socket() {
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd() as u32;
        let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap();
        let inode = meta.ino();
        let me = std::process::id();
        let scan = scan_holders(Path::new("/proc"), Some(&[me]), &|i| i == inode).unwrap();
        assert_eq!(scan.found.get(&Inode(inode)), Some(&vec![(me, fd)]));
        let all = scan_holders(Path::new("/proc"), None, &|i| i == inode).unwrap();
        assert!(all.found[&Inode(inode)].contains(&(me, fd)));
        assert!(all.scanned > 1);
    }
}
