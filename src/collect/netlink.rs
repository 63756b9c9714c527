//! The sock_diag netlink socket and its dump loop: one 32 KiB buffer,
//! reused; `MSG_TRUNC` so a datagram larger than the buffer is detected
//! instead of silently cut.

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use super::diag::{self, DumpStatus, Entry};
use crate::error::{Error, Result};
use crate::model::Family;

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

    /// Dump TCP sockets of `family` in `states` (kernel-filtered to `ports`
    /// if given), handing each to `on_entry`. If the kernel rejects the
    /// port filter (EINVAL on an old kernel), retries unfiltered: callers
    /// filter in user space too, so only the cost changes.
    pub fn dump(
        &mut self,
        family: Family,
        states: u32,
        ports: Option<&[u16]>,
        on_entry: &mut dyn FnMut(Entry<'_>),
    ) -> Result<()> {
        match self.dump_once(family, states, ports, on_entry) {
            Err(DumpError::Kernel(libc::EINVAL)) if ports.is_some() => self
                .dump_once(family, states, None, on_entry)
                .map_err(|e| e.into_error(family)),
            r => r.map_err(|e| e.into_error(family)),
        }
    }

    fn dump_once(
        &mut self,
        family: Family,
        states: u32,
        ports: Option<&[u16]>,
        on_entry: &mut dyn FnMut(Entry<'_>),
    ) -> Result<(), DumpError> {
        self.seq = self.seq.wrapping_add(1);
        let req = diag::build_request(family, states, ports, self.seq);
        self.sock.send(&req, 0).map_err(DumpError::Io)?;
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
            match diag::parse_dump(&self.buf[..n], &mut *on_entry).map_err(DumpError::Decode)? {
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

enum DumpError {
    Io(io::Error),
    Kernel(i32),
    Truncated(usize, usize),
    Decode(diag::DecodeError),
}

impl DumpError {
    fn into_error(self, family: Family) -> Error {
        let fam = match family {
            Family::Inet => "AF_INET",
            Family::Inet6 => "AF_INET6",
        };
        Error::Netlink(match self {
            DumpError::Io(e) => format!("{fam} dump: {e}"),
            DumpError::Kernel(errno) => format!(
                "{fam} dump: the kernel answered: {}",
                io::Error::from_raw_os_error(errno)
            ),
            DumpError::Truncated(n, cap) => {
                format!("{fam} dump: a {n}-byte datagram did not fit the {cap}-byte buffer")
            }
            DumpError::Decode(e) => format!("{fam} dump: {e}"),
        })
    }
}
