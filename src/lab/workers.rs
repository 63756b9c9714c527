//! The serve parent's children: fork them, hear from them over one pipe,
//! reap them, and make sure none outlives the parent. A forked child runs
//! [`worker::serve_loop`] and never returns into the parent's stack: it
//! always ends in `_exit`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::signals;
use super::worker::{self, Outcome};
use crate::error::{Error, Result};

/// How long children get to report that they listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long children get to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// SIGTERM is re-sent this often while waiting (a child may have missed it
/// between checking its flag and blocking; see `signals`).
const STOP_RESEND: Duration = Duration::from_millis(200);

/// What a child tells the parent over the report pipe (16 bytes each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    /// The child listens (shared: it holds the fd; reuseport: bound its own).
    Ready { pid: u32 },
    /// The child stopped after accepting `accepted` connections.
    Done { pid: u32, accepted: u64 },
    /// The child could not open its own socket (reuseport): errno.
    BindFailed { pid: u32, errno: i32 },
}

const MSG_LEN: usize = 16;

impl Msg {
    fn encode(self) -> [u8; MSG_LEN] {
        let (pid, kind, value) = match self {
            Msg::Ready { pid } => (pid, 1u32, 0u64),
            Msg::Done { pid, accepted } => (pid, 2, accepted),
            Msg::BindFailed { pid, errno } => (pid, 3, errno as u64),
        };
        let mut b = [0u8; MSG_LEN];
        b[0..4].copy_from_slice(&pid.to_le_bytes());
        b[4..8].copy_from_slice(&kind.to_le_bytes());
        b[8..16].copy_from_slice(&value.to_le_bytes());
        b
    }

    fn decode(b: &[u8; MSG_LEN]) -> Option<Msg> {
        let pid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let kind = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[8..16]);
        let value = u64::from_le_bytes(v);
        match kind {
            1 => Some(Msg::Ready { pid }),
            2 => Some(Msg::Done {
                pid,
                accepted: value,
            }),
            3 => Some(Msg::BindFailed {
                pid,
                errno: i32::try_from(value).unwrap_or(0),
            }),
            _ => None,
        }
    }
}

/// What a forked child needs (raw fds: the child closes some of them and
/// never runs the parent's destructors).
pub(super) struct ChildPlan {
    pub bound: SocketAddr,
    pub backlog: i32,
    pub reuseport: bool,
    pub stall: bool,
    /// The parent's listening socket (shared mode: the one every worker uses).
    pub parent_listener: i32,
    /// The write end of the report pipe.
    pub tx: i32,
}

/// fork() one worker. The child never returns from here.
pub(super) fn fork_worker(plan: &ChildPlan) -> io::Result<u32> {
    let parent = rustix::process::getpid();
    // SAFETY: this process has no other threads (see the module comment),
    // so the child starts with consistent locks and allocator state.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // Never unwind into the parent's frames (their destructors
            // would kill siblings): catch everything, then _exit.
            let code = std::panic::catch_unwind(|| child_main(plan, parent)).unwrap_or(101);
            // SAFETY: _exit skips atexit handlers and stdio flushing, which
            // belong to the parent.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid as u32),
    }
}

fn child_main(plan: &ChildPlan, parent: rustix::process::Pid) -> i32 {
    // Die with the parent, whatever kills it; and if it died before this
    // line ran, the signal will never come: leave now.
    if rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .is_err()
        || rustix::process::getppid() != Some(parent)
    {
        return 1;
    }
    signals::reset_in_child();
    let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
    // SAFETY: tx is the pipe's write end, open in the parent when we forked
    // and never closed in this process.
    let tx = unsafe { BorrowedFd::borrow_raw(plan.tx) };
    let own: Option<OwnedFd> = if plan.reuseport {
        // Without this the parent's socket would be held by every worker
        // and `ss` would no longer show one owner per socket.
        // SAFETY: the fd is the parent's listener, inherited, unused here.
        unsafe { libc::close(plan.parent_listener) };
        match worker::listen_on(plan.bound, plan.backlog, true) {
            Ok(fd) => Some(fd),
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                send(tx, Msg::BindFailed { pid: me, errno });
                return 1;
            }
        }
    } else {
        None
    };
    let listener = match &own {
        Some(fd) => fd.as_fd(),
        // SAFETY: the inherited shared listener stays open for our life.
        None => unsafe { BorrowedFd::borrow_raw(plan.parent_listener) },
    };
    if signals::start_tick().is_err() {
        return 1;
    }
    send(tx, Msg::Ready { pid: me });
    let Outcome { accepted, error } = worker::serve_loop(listener, plan.stall, &mut || {});
    send(tx, Msg::Done { pid: me, accepted });
    match error {
        Some(e) => {
            let _ = writeln!(io::stderr(), "worker {me}: accept failed: {e}");
            1
        }
        None => 0,
    }
}

fn send(tx: BorrowedFd<'_>, msg: Msg) {
    let b = msg.encode();
    loop {
        match rustix::io::write(tx, &b) {
            Err(Errno::INTR) => continue,
            // A write this small to a pipe is all or nothing; a failure
            // means the parent is gone, and so shall we be.
            _ => return,
        }
    }
}

/// A child that was reaped.
struct Ended {
    pid: u32,
    /// Exited with status 0 (what a stopped worker does).
    clean: bool,
    /// "killed by signal 9", "exited with status 1".
    how: String,
}

#[derive(Debug)]
struct Child {
    pid: u32,
    ready: bool,
    accepted: Option<u64>,
    /// Reaped (or known to be gone); never signal it again.
    reaped: bool,
}

/// The parent's children. Dropping it kills and reaps any still running:
/// that is what makes every error path leave no worker behind.
pub(super) struct Workers {
    owner: rustix::process::Pid,
    rx: OwnedFd,
    /// Bytes of a message read only in part.
    partial: Vec<u8>,
    children: Vec<Child>,
    parent_count: Option<u64>,
}

impl Workers {
    pub(super) fn new(rx: OwnedFd) -> Self {
        Workers {
            owner: rustix::process::getpid(),
            rx,
            partial: Vec::new(),
            children: Vec::new(),
            // Stays 0 if a stop request comes before the parent serves.
            parent_count: Some(0),
        }
    }

    pub(super) fn add(&mut self, pid: u32) {
        self.children.push(Child {
            pid,
            ready: false,
            accepted: None,
            reaped: false,
        });
    }

    pub(super) fn all_pids(&self) -> Vec<u32> {
        let mut v = vec![self.owner.as_raw_nonzero().get() as u32];
        v.extend(self.children.iter().map(|c| c.pid));
        v
    }

    /// The parent's own count (it is a worker too).
    pub(super) fn set_parent_count(&mut self, n: u64) {
        self.parent_count = Some(n);
    }

    /// (pid, accepted) for every worker, parent first; None = unknown.
    pub(super) fn counts(&self) -> Vec<(u32, Option<u64>)> {
        let mut v = vec![(self.owner.as_raw_nonzero().get() as u32, self.parent_count)];
        v.extend(self.children.iter().map(|c| (c.pid, c.accepted)));
        v
    }

    fn child_mut(&mut self, pid: u32) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.pid == pid)
    }

    /// Wait until every child listens. A child that could not bind fails
    /// the whole server (with its errno); one that died fails it too.
    pub(super) fn wait_ready(&mut self, bound: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // Reap first: a child's last message is in the pipe before it
            // can be reaped, so a bind failure is reported as such.
            let ended = self.reap();
            for msg in self.read_messages() {
                match msg {
                    Msg::BindFailed { errno, .. } => {
                        return Err(Error::os(
                            format!("cannot bind {bound}"),
                            io::Error::from_raw_os_error(errno),
                        ))
                    }
                    Msg::Ready { pid } => {
                        if let Some(c) = self.child_mut(pid) {
                            c.ready = true;
                        }
                    }
                    Msg::Done { .. } => {}
                }
            }
            if let Some(e) = ended.into_iter().next() {
                return Err(Error::os(
                    format!("worker {} {} while starting", e.pid, e.how),
                    io::Error::other("a worker failed to start"),
                ));
            }
            if signals::stop_requested() || self.children.iter().all(|c| c.ready) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::os(
                    "the workers did not start listening",
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            self.wait_pipe((deadline - now).min(Duration::from_millis(100)));
        }
    }

    /// Block until the pipe is readable or `timeout` (or a signal).
    fn wait_pipe(&self, timeout: Duration) {
        let mut fds = [rustix::event::PollFd::new(
            &self.rx,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec::try_from(timeout).ok();
        let _ = rustix::event::poll(&mut fds, ts.as_ref());
    }

    /// Every complete message waiting in the pipe.
    fn read_messages(&mut self) -> Vec<Msg> {
        let mut buf = [0u8; 64 * MSG_LEN];
        loop {
            match rustix::io::read(&self.rx, &mut buf[..]) {
                Ok(0) => break,
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let whole = self.partial.len() / MSG_LEN * MSG_LEN;
        let msgs = self.partial[..whole]
            .chunks_exact(MSG_LEN)
            .filter_map(|c| <&[u8; MSG_LEN]>::try_from(c).ok().and_then(Msg::decode))
            .collect();
        self.partial.drain(..whole);
        msgs
    }

    fn absorb_messages(&mut self) {
        for msg in self.read_messages() {
            if let Msg::Done { pid, accepted } = msg {
                if let Some(c) = self.child_mut(pid) {
                    c.accepted = Some(accepted);
                }
            }
        }
    }

    /// Reap every child that ended.
    fn reap(&mut self) -> Vec<Ended> {
        let mut ended = Vec::new();
        for c in self.children.iter_mut().filter(|c| !c.reaped) {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(c.pid as i32, &mut status, libc::WNOHANG) };
            if r == c.pid as i32 {
                c.reaped = true;
                ended.push(Ended {
                    pid: c.pid,
                    clean: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    how: describe_status(status),
                });
            } else if r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                c.reaped = true;
                ended.push(Ended {
                    pid: c.pid,
                    clean: false,
                    how: "vanished".into(),
                });
            }
        }
        ended
    }

    /// While serving: notice children that ended and say so on stderr
    /// (the rest keep serving; a dead one's count stays unknown).
    pub(super) fn poll(&mut self) {
        if !signals::take_child_event() {
            return;
        }
        for e in self.reap() {
            let _ = writeln!(io::stderr(), "worker {} died: {}", e.pid, e.how);
        }
        self.absorb_messages();
    }

    fn signal_running(&self, sig: i32) {
        for c in self.children.iter().filter(|c| !c.reaped) {
            // SAFETY: kill(2) on our own unreaped child (its pid cannot
            // have been reused).
            unsafe { libc::kill(c.pid as i32, sig) };
        }
    }

    /// SIGTERM every child, collect their counts, reap them all (SIGKILL
    /// whoever is still there after STOP_TIMEOUT).
    pub(super) fn stop_all(&mut self) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut resend = Instant::now();
        loop {
            for e in self.reap().into_iter().filter(|e| !e.clean) {
                let _ = writeln!(io::stderr(), "worker {} died: {}", e.pid, e.how);
            }
            self.absorb_messages();
            if self.children.iter().all(|c| c.reaped) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                for c in self.children.iter().filter(|c| !c.reaped) {
                    let _ = writeln!(
                        io::stderr(),
                        "worker {} did not stop within {}s: killing it",
                        c.pid,
                        STOP_TIMEOUT.as_secs()
                    );
                }
                self.kill_and_reap();
                break;
            }
            if now >= resend {
                self.signal_running(libc::SIGTERM);
                resend = now + STOP_RESEND;
            }
            self.wait_pipe(Duration::from_millis(10));
        }
        // Counts written just before exiting may still sit in the pipe.
        self.absorb_messages();
    }

    fn kill_and_reap(&mut self) {
        self.signal_running(libc::SIGKILL);
        for c in self.children.iter_mut().filter(|c| !c.reaped) {
            let mut status = 0;
            loop {
                // SAFETY: blocking waitpid on our own child; SIGKILL cannot
                // be ignored, so this returns.
                let r = unsafe { libc::waitpid(c.pid as i32, &mut status, 0) };
                if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            c.reaped = true;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // A forked child holds a copy of this value but never drops it
        // (it _exits); the check is belt and braces.
        if rustix::process::getpid() == self.owner {
            self.kill_and_reap();
        }
    }
}

fn describe_status(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else {
        format!("ended (wait status {status:#x})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            Msg::Ready { pid: 7 },
            Msg::Done {
                pid: 4_000_000,
                accepted: u64::MAX,
            },
            Msg::BindFailed {
                pid: 1,
                errno: libc::EADDRINUSE,
            },
        ] {
            assert_eq!(Msg::decode(&m.encode()), Some(m));
        }
        assert_eq!(Msg::decode(&[0xff; MSG_LEN]), None);
    }
}
