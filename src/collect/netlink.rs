//! The sock_diag netlink socket and its dump loop (TCP, UDP, unix): one 32 KiB buffer,
//! reused; `MSG_TRUNC` so a datagram larger than the buffer is detected
//! instead of silently cut.

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use super::diag::{self, DumpStatus, Entry};
use super::unixdiag;
use crate::error::{Error, Result};
use crate::model::{self, Family, Proto};

/// The kernel sizes dump datagrams to the reader's buffer up to 32 KiB
/// (and to a larger one after one large read): keep one of that size.
const RECV_BUF: usize = 32 * 1024;

pub struct DiagSocket {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl DiagSocket {
    pub fn open() -> Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| {
            Error::Netlink(format!(
                "cannot open a NETLINK_SOCK_DIAG socket ({e}); the kernel may lack sock_diag (CONFIG_INET_DIAG)"
            ))
        })?;
        sock.bind_auto()
            .map_err(|e| Error::Netlink(format!("cannot bind the netlink socket: {e}")))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::Netlink(format!("cannot connect the netlink socket: {e}")))?;
        Ok(DiagSocket {
            sock,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Dump TCP or UDP sockets of `family` in `states` (kernel-filtered to
    /// `ports` if given), handing each to `on_entry`. If the kernel rejects
    /// the port filter (EINVAL on an old kernel), retries unfiltered:
    /// callers filter in user space too, so only the cost changes.
    pub fn dump(
        &mut self,
        proto: Proto,
        family: Family,
        states: u32,
        ports: Option<&[u16]>,
        on_entry: &mut dyn FnMut(Entry<'_>),
    ) -> Result<()> {
        let what = DumpWhat(proto, family);
        let mut on_payload = |p: &[u8]| -> Result<(), String> {
            on_entry(Entry::parse(proto, p)?);
            Ok(())
        };
        let mut once = |this: &mut Self, ports: Option<&[u16]>| {
            this.seq = this.seq.wrapping_add(1);
            let req = diag::build_request(proto, family, states, ports, this.seq);
            this.dump_raw(&req, &mut on_payload)
        };
        match once(self, ports) {
            Err(DumpError::Kernel(libc::EINVAL)) if ports.is_some() => {
                once(self, None).map_err(|e| e.into_error(what))
            }
            r => r.map_err(|e| e.into_error(what)),
        }
    }

    /// Dump unix sockets in `states` (unix_diag has no in-kernel filter
    /// beyond states), handing each message to `on_socket`.
    pub fn dump_unix(
        &mut self,
        states: u32,
        on_socket: &mut dyn FnMut(model::Socket),
    ) -> Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let req = unixdiag::build_request(states, self.seq);
        let mut on_payload = |p: &[u8]| -> Result<(), String> {
            on_socket(unixdiag::parse_socket(p)?);
            Ok(())
        };
        self.dump_raw(&req, &mut on_payload)
            .map_err(|e| e.into_error(DumpWhat(Proto::Unix, Family::Unix)))
    }

    fn dump_raw(
        &mut self,
        req: &[u8],
        on_payload: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), DumpError> {
        self.sock.send(req, 0).map_err(DumpError::Io)?;
        loop {
            let n = {
                let mut slice: &mut [u8] = &mut self.buf[..];
                self.sock
                    .recv(&mut slice, libc::MSG_TRUNC)
                    .map_err(DumpError::Io)?
            };
            if n > self.buf.len() {
                return Err(DumpError::Truncated(n, self.buf.len()));
            }
            match diag::walk_messages(&self.buf[..n], &mut *on_payload)
                .map_err(DumpError::Decode)?
            {
                DumpStatus::More if n == 0 => {
                    return Err(DumpError::Io(io::ErrorKind::UnexpectedEof.into()))
                }
                DumpStatus::More => continue,
                DumpStatus::Done => return Ok(()),
                DumpStatus::Error(errno) => return Err(DumpError::Kernel(errno)),
            }
        }
    }
}

/// Which dump failed, for the message.
#[derive(Clone, Copy)]
struct DumpWhat(Proto, Family);

impl std::fmt::Display for DumpWhat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fam = match self.1 {
            Family::Inet => "AF_INET",
            Family::Inet6 => "AF_INET6",
            Family::Unix => "AF_UNIX",
        };
        match self.0 {
            Proto::Tcp => write!(f, "{fam} TCP"),
            Proto::Udp => write!(f, "{fam} UDP"),
            Proto::Unix => f.write_str(fam),
        }
    }
}

enum DumpError {
    Io(io::Error),
    Kernel(i32),
    Truncated(usize, usize),
    Decode(diag::DecodeError),
}

impl DumpError {
    fn into_error(self, what: DumpWhat) -> Error {
        Error::Netlink(match self {
            DumpError::Io(e) => format!("{what} dump: {e}"),
            DumpError::Kernel(errno) => format!(
                "{what} dump: the kernel answered: {}",
                io::Error::from_raw_os_error(errno)
            ),
            DumpError::Truncated(n, cap) => {
                format!("{what} dump: a {n}-byte datagram did not fit the {cap}-byte buffer")
            }
            DumpError::Decode(e) => format!("{what} dump: {e}"),
        })
    }
}
