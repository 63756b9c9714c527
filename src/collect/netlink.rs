//! The sock_diag netlink socket and its dump loop (TCP, UDP, unix): one 32 KiB buffer,
//! reused; `MSG_TRUNC` so a datagram larger than the buffer is detected
//! instead of silently cut. The loop talks to a [`Wire`]: the kernel's
//! socket ([`Kernel`]), or a recording of its answers (`collect::source`).

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use super::diag::{self, AttrProblems, DumpStatus, Entry};
use super::unixdiag;
use crate::error::{Error, NetlinkCause, NetlinkError, Result};
use crate::model::{self, Family, Proto};

/// The kernel sizes dump datagrams to the reader's buffer up to 32 KiB
/// (and to a larger one after one large read): keep one of that size.
const RECV_BUF: usize = 32 * 1024;

/// Where a dump request goes and its answer comes from, one datagram at
/// a time.
pub trait Wire {
    /// Send one request; `what` names it (a recording's key, messages).
    fn send(&mut self, what: &DumpWhat<'_>, request: &[u8]) -> Result<(), NetlinkCause>;
    /// The next datagram of the answer into `buf`: its whole length, more
    /// than `buf.len()` if it did not fit (as with `MSG_TRUNC`).
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, NetlinkCause>;
}

/// The kernel's NETLINK_SOCK_DIAG socket, in the namespace it was opened in.
pub struct Kernel(Socket);

impl Kernel {
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
        Ok(Kernel(sock))
    }
}

impl Wire for Kernel {
    fn send(&mut self, _: &DumpWhat<'_>, request: &[u8]) -> Result<(), NetlinkCause> {
        self.0.send(request, 0).map(drop).map_err(NetlinkCause::Io)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, NetlinkCause> {
        let mut slice: &mut [u8] = buf;
        self.0
            .recv(&mut slice, libc::MSG_TRUNC)
            .map_err(NetlinkCause::Io)
    }
}

pub struct DiagSocket<W = Kernel> {
    wire: W,
    buf: Vec<u8>,
    seq: u32,
}

impl DiagSocket<Kernel> {
    pub fn open() -> Result<Self> {
        Ok(DiagSocket::over(Kernel::open()?))
    }
}

impl<W: Wire> DiagSocket<W> {
    /// Dumps over `wire`.
    pub fn over(wire: W) -> Self {
        DiagSocket {
            wire,
            buf: vec![0; RECV_BUF],
            seq: 0,
        }
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
            this.dump_raw(&DumpWhat { ports, ..what }, &req, &mut on_payload)
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
        let what = DumpWhat {
            proto: Proto::Unix,
            family: Family::Unix,
            states,
            ports: None,
        };
        self.dump_raw(&what, &req, &mut on_payload)
            .map_err(|e| e.into_error(what))?;
        Ok(problems)
    }

    fn dump_raw(
        &mut self,
        what: &DumpWhat<'_>,
        req: &[u8],
        on_payload: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), DumpError> {
        self.wire.send(what, req).map_err(DumpError::Wire)?;
        loop {
            let n = self.wire.recv(&mut self.buf).map_err(DumpError::Wire)?;
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

/// Which dump: family, protocol, states and ports (a recording's key, and
/// the message when it fails).
#[derive(Debug, Clone, Copy)]
pub struct DumpWhat<'a> {
    pub proto: Proto,
    pub family: Family,
    pub states: u32,
    pub ports: Option<&'a [u16]>,
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
    /// The wire failed to send or receive (its cause as is).
    Wire(NetlinkCause),
    Io(io::Error),
    Kernel(i32),
    Truncated(usize, usize),
    Decode(diag::DecodeError),
}

impl DumpError {
    fn into_error(self, what: DumpWhat<'_>) -> Error {
        let cause = match self {
            DumpError::Wire(c) => c,
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
