//! One serve worker's life: open a listening socket, then block in
//! `accept()` and echo each connection until EOF, one connection at a time
//! (on purpose, so the accept queue stays visible). Used by the
//! parent and by every forked child alike; knows nothing about fork.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

use super::signals;

/// Bytes read per `read()` on a connection.
const ECHO_BUF: usize = 64 * 1024;

/// `socket` + `SO_REUSEADDR` (+ `SO_REUSEPORT`) + `bind` + `listen`.
/// CLOEXEC so nothing sockmap might exec inherits it; fork still does.
pub(super) fn listen_on(addr: SocketAddr, backlog: i32, reuseport: bool) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    if reuseport {
        rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, backlog)?;
    Ok(fd)
}

/// The port the kernel actually bound (the answer to `--port 0`).
pub(super) fn local_port(fd: BorrowedFd<'_>) -> io::Result<u16> {
    let any = rustix::net::getsockname(fd)?;
    let addr = SocketAddr::try_from(any).map_err(|_| io::Error::other("not an inet socket"))?;
    Ok(addr.port())
}

/// How a worker's loop ended.
pub(super) struct Outcome {
    pub accepted: u64,
    /// Set when accept() failed in a way retrying cannot fix.
    pub error: Option<io::Error>,
}

/// Accept and echo until SIGINT/SIGTERM. `on_wake` runs after every
/// interrupted call (the parent uses it to reap children promptly).
/// With `stall`, never accept: sleep until told to stop.
pub(super) fn serve_loop(
    listener: BorrowedFd<'_>,
    stall: bool,
    on_wake: &mut dyn FnMut(),
) -> Outcome {
    let mut accepted = 0;
    let mut buf = vec![0u8; ECHO_BUF];
    while !signals::stop_requested() {
        if stall {
            // SAFETY: pause() just waits for a signal; the tick bounds it.
            unsafe { libc::pause() };
            on_wake();
            continue;
        }
        // Blocking accept on purpose: `sockmap inspect` shows threads
        // blocked in accept() as the socket's waiters.
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Ok(conn) => {
                accepted += 1;
                // An echo writes back whatever one read() returned; with
                // Nagle on, each round's short tail waits for the peer's
                // delayed ACK (up to 40 ms): 1000x10x512KiB took 18 s
                // instead of 2 s. Failing to set it only costs speed.
                let _ = rustix::net::sockopt::set_tcp_nodelay(&conn, true);
                echo(&conn, &mut buf, on_wake);
            }
            Err(Errno::INTR) => on_wake(),
            // The connection died in the queue, or a network error the
            // man page says to treat like EAGAIN: take the next one.
            Err(
                Errno::CONNABORTED
                | Errno::PROTO
                | Errno::PERM
                | Errno::NETDOWN
                | Errno::NOPROTOOPT
                | Errno::HOSTDOWN
                | Errno::NONET
                | Errno::HOSTUNREACH
                | Errno::OPNOTSUPP
                | Errno::NETUNREACH,
            ) => {}
            // Out of fds or memory: the connection waits in the queue;
            // back off briefly rather than spin.
            Err(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Outcome {
                    accepted,
                    error: Some(e.into()),
                }
            }
        }
    }
    Outcome {
        accepted,
        error: None,
    }
}

/// Echo one connection until EOF, an error, or a stop request (then the
/// connection is abandoned: closing it is the prompt answer to SIGTERM).
fn echo(conn: &OwnedFd, buf: &mut [u8], on_wake: &mut dyn FnMut()) {
    loop {
        if signals::stop_requested() {
            return;
        }
        let n = match rustix::io::read(conn, &mut *buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(Errno::INTR) => {
                on_wake();
                continue;
            }
            Err(_) => return,
        };
        if !write_all(conn, &buf[..n], on_wake) {
            return;
        }
    }
}

/// Write every byte, resuming after partial writes; false if the
/// connection failed or a stop was requested.
fn write_all(conn: &OwnedFd, mut data: &[u8], on_wake: &mut dyn FnMut()) -> bool {
    while !data.is_empty() {
        if signals::stop_requested() {
            return false;
        }
        // NOSIGNAL: a peer that went away is an EPIPE to handle, not a
        // SIGPIPE that kills the worker.
        match rustix::net::send(conn, data, SendFlags::NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => on_wake(),
            Err(_) => return false,
        }
    }
    true
}
