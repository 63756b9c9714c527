//! The raw floor: the least work that can answer "which (pid, fd) hold
//! these socket inodes". Shared by `examples/floor.rs` (timed against
//! `sockmap inspect` by `scripts/bench`) and `benches/scan.rs` (criterion,
//! in process, against `sockmap::collect::fdscan::scan_holders`).
//!
//! Raw syscalls, no allocation per process or per fd: `openat(/proc)` +
//! `getdents64` for the pids, then per pid `openat("PID/fd")` +
//! `getdents64` + one `readlinkat` per entry into a stack buffer,
//! `socket:[INODE]` parsed in place and looked up in a set. Threads take
//! pids from a shared counter in small batches, so a slow process
//! directory does not leave one thread idle at the end.
//!
//! `readlinkat` goes through rustix's inline syscall, not glibc's wrapper:
//! on the benchmark machine (AMD EPYC VM, Linux 6.18) the very same
//! syscalls cost ~20 % more kernel cycles (equal kernel instructions) when
//! issued through glibc's `readlinkat()` or `syscall()`; see BENCHMARKS.md.
//! [`LIBC_READLINK`] switches to glibc's wrapper to reproduce that.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Issue `readlinkat` through glibc's wrapper instead of rustix's inline
/// syscall (`floor --libc-readlink`).
pub static LIBC_READLINK: AtomicBool = AtomicBool::new(false);

/// What one scan saw.
#[derive(Debug, Default, Clone)]
pub struct FloorScan {
    /// (pid, fd, inode) for every fd that links to a wanted inode.
    pub holders: Vec<(u32, u32, u64)>,
    /// Process fd directories opened.
    pub procs: usize,
    /// Entries of those directories read with `readlinkat`.
    pub fds: usize,
    /// Process fd directories we were not allowed to open.
    pub denied: usize,
}

const DENTS: usize = 32 * 1024;
const BATCH: usize = 8;

fn parse_u32(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in name {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(v)
}

fn parse_socket(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Call `f(name_with_nul)` for every entry of the open directory `fd`.
/// The name slice ends in its NUL, so it can go straight back to a
/// `*at` syscall. Stops quietly on an error (the process exited).
fn each_dirent(fd: libc::c_int, buf: &mut [u8; DENTS], mut f: impl FnMut(&[u8])) {
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            )
        };
        if n <= 0 {
            return;
        }
        let n = n as usize;
        let mut off = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while off + 19 < n {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n {
                return;
            }
            let name = &buf[off + 19..off + reclen];
            if let Some(end) = name.iter().position(|&b| b == 0) {
                f(&name[..=end]);
            }
            off += reclen;
        }
    }
}

fn open_dir(dirfd: libc::c_int, path: &[u8]) -> Result<libc::c_int, i32> {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        libc::openat(
            dirfd,
            path.as_ptr().cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(fd)
    }
}

/// An open /proc, closed on drop.
pub struct Proc(libc::c_int);

impl Proc {
    pub fn open() -> std::io::Result<Proc> {
        open_dir(libc::AT_FDCWD, b"/proc\0")
            .map(Proc)
            .map_err(std::io::Error::from_raw_os_error)
    }

    /// The numeric entries of /proc.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::with_capacity(4096);
        let mut buf = Box::new([0u8; DENTS]);
        // SAFETY: rewinding our own directory fd.
        unsafe { libc::lseek(self.0, 0, libc::SEEK_SET) };
        each_dirent(self.0, &mut buf, |name| {
            if let Some(pid) = parse_u32(&name[..name.len() - 1]) {
                pids.push(pid);
            }
        });
        pids
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

fn scan_one(
    proc: &Proc,
    pid: u32,
    want: &HashSet<u64>,
    dents: &mut [u8; DENTS],
    out: &mut FloorScan,
) {
    // "PID/fd\0" on the stack.
    let mut path = [0u8; 24];
    let mut digits = [0u8; 10];
    let (mut v, mut n) = (pid, 0);
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        path[i] = digits[n - 1 - i];
    }
    path[n..n + 4].copy_from_slice(b"/fd\0");
    let dir = match open_dir(proc.0, &path[..n + 4]) {
        Ok(fd) => fd,
        Err(libc::EACCES) | Err(libc::EPERM) => {
            out.denied += 1;
            return;
        }
        Err(_) => return, // ENOENT/ESRCH: exited
    };
    out.procs += 1;
    // SAFETY: dir stays open until the close below.
    let fd_dir = unsafe { BorrowedFd::borrow_raw(dir) };
    let libc_readlink = LIBC_READLINK.load(Ordering::Relaxed);
    let mut link = [0u8; 64];
    each_dirent(dir, dents, |name| {
        let Some(fd) = parse_u32(&name[..name.len() - 1]) else {
            return; // "." and ".."
        };
        out.fds += 1;
        let len = if libc_readlink {
            // SAFETY: name is NUL-terminated; link is a stack buffer of its length.
            let n = unsafe {
                libc::readlinkat(
                    dir,
                    name.as_ptr().cast(),
                    link.as_mut_ptr().cast(),
                    link.len(),
                )
            };
            if n <= 0 {
                return;
            }
            n as usize
        } else {
            let Ok(cname) = CStr::from_bytes_with_nul(name) else {
                return;
            };
            match rustix::fs::readlinkat_raw(fd_dir, cname, &mut link[..]) {
                Ok(n) => n,
                Err(_) => return,
            }
        };
        if let Some(inode) = parse_socket(&link[..len.min(link.len())]) {
            if want.contains(&inode) {
                out.holders.push((pid, fd, inode));
            }
        }
    });
    // SAFETY: we own dir.
    unsafe { libc::close(dir) };
}

/// How pids are shared among threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Threads take batches of `BATCH` pids from a shared counter.
    Dynamic,
    /// Thread i takes the i-th contiguous chunk of the pid list (what
    /// `scan_holders` does): a chunk full of busy processes finishes last.
    Static,
}

/// Scan `pids` on `threads` threads (1 = the calling thread only).
pub fn scan(proc: &Proc, pids: &[u32], want: &HashSet<u64>, threads: usize) -> FloorScan {
    scan_split(proc, pids, want, threads, Split::Dynamic)
}

/// [`scan`] with a choice of how the pids are split among threads.
pub fn scan_split(
    proc: &Proc,
    pids: &[u32],
    want: &HashSet<u64>,
    threads: usize,
    split: Split,
) -> FloorScan {
    let next = AtomicUsize::new(0);
    let dynamic = |out: &mut FloorScan| {
        let mut dents = Box::new([0u8; DENTS]);
        loop {
            let start = next.fetch_add(BATCH, Ordering::Relaxed);
            if start >= pids.len() {
                break;
            }
            for &pid in &pids[start..(start + BATCH).min(pids.len())] {
                scan_one(proc, pid, want, &mut dents, out);
            }
        }
    };
    let chunk_of = |part: &[u32], out: &mut FloorScan| {
        let mut dents = Box::new([0u8; DENTS]);
        for &pid in part {
            scan_one(proc, pid, want, &mut dents, out);
        }
    };
    let mut total = FloorScan::default();
    if threads <= 1 || pids.is_empty() {
        dynamic(&mut total);
        total.holders.sort_unstable();
        return total;
    }
    let chunk = pids.len().div_ceil(threads);
    let parts: Vec<FloorScan> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let part = pids
                    .get(i * chunk..((i + 1) * chunk).min(pids.len()))
                    .unwrap_or(&[]);
                let (dynamic, chunk_of) = (&dynamic, &chunk_of);
                s.spawn(move || {
                    let mut out = FloorScan::default();
                    match split {
                        Split::Dynamic => dynamic(&mut out),
                        Split::Static => chunk_of(part, &mut out),
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for mut p in parts {
        total.holders.append(&mut p.holders);
        total.procs += p.procs;
        total.fds += p.fds;
        total.denied += p.denied;
    }
    total.holders.sort_unstable();
    total
}

/// `available_parallelism()`, or 1.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
