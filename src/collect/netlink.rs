//! The sock_diag netlink socket and its dump loop (TCP, UDP, unix): one 32 KiB buffer,
//! reused; `MSG_TRUNC` so a datagram larger than the buffer is detected
//! instead of silently cut.

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use super::diag::{self, AttrProblems, DumpStatus, Entry};
use super::unixdiag;
use crate::error::{Error, NetlinkCause, NetlinkError, Result};
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
        let fail = |step: &'static str| {
            move |source: io::Error| {
                Error::Netlink(NetlinkError {
                    request: "socket (the kernel may lack sock_diag, CONFIG_INET_DIAG)".into(),
                    cause: NetlinkCause::Socket { step, source },
                })
            }
        };
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(fail("open"))?;
        sock.bind_auto().map_err(fail("bind"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(fail("connect"))?;
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
        let what = DumpWhat {
            proto,
            family,
            states,
            ports,
        };
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
    /// beyond states), handing each message to `on_socket`; returns the
    /// attribute problems of the sockets handed over.
    pub fn dump_unix(
        &mut self,
        states: u32,
        on_socket: &mut dyn FnMut(model::Socket),
    ) -> Result<AttrProblems> {
        self.seq = self.seq.wrapping_add(1);
        let req = unixdiag::build_request(states, self.seq);
        let mut problems = AttrProblems::default();
        let mut on_payload = |p: &[u8]| -> Result<(), String> {
            let (socket, problem) = unixdiag::parse_socket(p)?;
            problems.note(socket.inode, problem);
            on_socket(socket);
            Ok(())
        };
        self.dump_raw(&req, &mut on_payload).map_err(|e| {
            e.into_error(DumpWhat {
                proto: Proto::Unix,
                family: Family::Unix,
                states,
                ports: None,
            })
        })?;
        Ok(problems)
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

/// Which dump failed: family, protocol, states and ports, for the message.
#[derive(Clone, Copy)]
struct DumpWhat<'a> {
    proto: Proto,
    family: Family,
    states: u32,
    ports: Option<&'a [u16]>,
}

impl std::fmt::Display for DumpWhat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fam = match self.family {
            Family::Inet => "AF_INET",
            Family::Inet6 => "AF_INET6",
            Family::Unix => "AF_UNIX",
        };
        match self.proto {
            Proto::Tcp => write!(f, "{fam} TCP dump")?,
            Proto::Udp => write!(f, "{fam} UDP dump")?,
            Proto::Unix => write!(f, "{fam} dump")?,
        }
        write!(f, ", states {:#x}", self.states)?;
        if let Some(ports) = self.ports {
            let list: Vec<String> = ports.iter().map(u16::to_string).collect();
            write!(f, ", ports {}", list.join(","))?;
        }
        Ok(())
    }
}

enum DumpError {
    Io(io::Error),
    Kernel(i32),
    Truncated(usize, usize),
    Decode(diag::DecodeError),
}

impl DumpError {
    fn into_error(self, what: DumpWhat<'_>) -> Error {
        let cause = match self {
            DumpError::Io(e) => NetlinkCause::Io(e),
            DumpError::Kernel(errno) => NetlinkCause::Kernel { errno },
            DumpError::Truncated(got, cap) => NetlinkCause::Truncated { got, cap },
            DumpError::Decode(e) => NetlinkCause::Decode(e.to_string()),
        };
        Error::Netlink(NetlinkError {
            request: what.to_string(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dump_names_its_request_and_errno() {
        let what = DumpWhat {
            proto: Proto::Tcp,
            family: Family::Inet6,
            states: 1 << 10,
            ports: Some(&[8000, 8001]),
        };
        let Error::Netlink(e) = DumpError::Kernel(libc::EINVAL).into_error(what) else {
            panic!("a netlink error");
        };
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert_eq!(
            e.request,
            "AF_INET6 TCP dump, states 0x400, ports 8000,8001"
        );
        let text = Error::Netlink(e).to_string();
        assert!(
            text.starts_with("sock_diag query failed: AF_INET6 TCP dump, states 0x400, ports 8000,8001: the kernel answered: "),
            "{text}"
        );
        assert!(text.ends_with("(errno 22)"), "{text}");
        let Error::Netlink(t) = DumpError::Truncated(70000, 32768).into_error(what) else {
            panic!("a netlink error");
        };
        assert_eq!(t.errno(), None);
        assert!(t
            .to_string()
            .ends_with("a 70000-byte datagram did not fit the 32768-byte buffer"));
    }
}
