//! Pure inet_diag encoding and decoding (TCP and UDP): request bytes (with
//! the in-kernel port filter of `bytecode`) and dump messages → `Socket`;
//! and the netlink message walk every sock_diag dump shares (unix dumps
//! decode their payloads in `unixdiag`). No I/O; every function here is
//! tested on bytes.

pub mod bytecode;

use std::net::IpAddr;

use netlink_packet_core::{
    Emitable, ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NlasIterator, Parseable, NLA_ALIGNTO, NLMSG_ALIGNTO, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::INET_DIAG_SKMEMINFO,
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
    SockDiagMessage, AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY,
};

use self::bytecode::Bytecode;
use crate::model::{Family, Inode, Proto, RequestSock, Socket, TcpState, Warning, WarningKind};

/// TCP state bits for `idiag_states`.
pub const STATE_LISTEN: u32 = 1 << 10;
/// ESTABLISHED: a connected UDP or unix socket.
pub const STATE_ESTABLISHED: u32 = 1 << 1;
/// CLOSE (7): an unconnected UDP socket (bound, or not even that).
pub const STATE_CLOSE: u32 = 1 << 7;
/// SYN_RECV (3) and NEW_SYN_RECV (12): request sockets, i.e. the SYN queue.
pub const STATE_SYN_RECV: u32 = (1 << 3) | (1 << 12);
/// Every state (what `ss -a` asks for).
pub const STATE_ALL: u32 = 0xfff;

/// A complete `SOCK_DIAG_BY_FAMILY` dump request for TCP or UDP sockets of
/// one inet family in `states`, optionally filtered in the kernel to `ports`.
/// (`Proto::Unix` or `Family::Unix` here is a caller bug: it asks for TCP
/// over IPv6, which the caller's own filter then drops.) An empty `ports`
/// is no filter.
pub fn build_request(
    proto: Proto,
    family: Family,
    states: u32,
    ports: Option<&[u16]>,
    seq: u32,
) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::Inet => (AF_INET, SocketId::new_v4()),
        Family::Inet6 | Family::Unix => (AF_INET6, SocketId::new_v6()),
    };
    let req = InetRequest {
        family: af,
        protocol: match proto {
            Proto::Udp => IPPROTO_UDP,
            Proto::Tcp | Proto::Unix => IPPROTO_TCP,
        },
        // SKMEMINFO carries sk_drops (per-listener drops on a full queue;
        // UDP datagrams dropped) and sk_rcvbuf.
        extensions: ExtensionFlags::SKMEMINFO,
        states: StateFlags::from_bits_retain(states),
        socket_id,
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::InetRequest(req)),
    );
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);

    // A filter too long to encode is left out: callers filter in user
    // space too, so only the cost changes.
    if let Some(bc) = ports.and_then(Bytecode::sport_any_of) {
        // The crate's request has no attributes: append the program and
        // patch nlmsg_len.
        let at = buf.len();
        buf.resize(at + bc.buffer_len(), 0);
        bc.emit(&mut buf[at..]);
        let len = buf.len() as u32;
        NetlinkBuffer::new(&mut buf[..]).set_length(len);
    }
    buf
}

/// Where a dump stands after one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpStatus {
    /// More datagrams follow.
    More,
    /// NLMSG_DONE seen.
    Done,
    /// NLMSG_ERROR with this (positive) errno.
    Error(i32),
}

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed sock_diag message at byte {offset}: {reason}")]
pub struct DecodeError {
    pub offset: usize,
    pub reason: String,
}

/// `SK_MEMINFO_RCVBUF` and `SK_MEMINFO_DROPS`: word indexes in the u32
/// array of `INET_DIAG_SKMEMINFO`.
const SK_MEMINFO_RCVBUF: usize = 1;
const SK_MEMINFO_DROPS: usize = 8;

/// An attribute of one socket that could not be decoded. The socket keeps
/// its header fields (addresses, state, queues, inode); what the attribute
/// carried is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    /// A length that runs past the message or is below the 4-byte
    /// header: this attribute and every one after it are lost.
    #[error("attribute list broken at byte {offset}: {reason}")]
    Framing { offset: usize, reason: String },
    /// One attribute is shorter than its type needs.
    #[error("{name} is {len} bytes, needs {need}")]
    Short {
        name: &'static str,
        len: usize,
        need: usize,
    },
}

/// The attribute problems of a dump (or of a pass): how many sockets had
/// one, and the first, for the warning's detail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrProblems {
    pub sockets: u64,
    pub first: Option<(Inode, AttrError)>,
}

impl AttrProblems {
    /// Count `problem`, if any, against the socket `inode`.
    pub fn note(&mut self, inode: Inode, problem: Option<AttrError>) {
        if let Some(p) = problem {
            self.sockets += 1;
            self.first.get_or_insert((inode, p));
        }
    }

    pub fn merge(&mut self, other: AttrProblems) {
        self.sockets += other.sockets;
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    /// `AttributesUndecoded` (count: sockets), when any socket had one.
    pub fn warning(&self) -> Option<Warning> {
        let (inode, first) = self.first.as_ref()?;
        Some(
            Warning::new(WarningKind::AttributesUndecoded, self.sockets)
                .detail(format!("socket inode {}: {first}", inode.0)),
        )
    }
}

/// The `u32` at byte `at` of an attribute value, if it is long enough.
pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The first `N` `u32` words of the attribute `name`'s value, or why not.
pub(super) fn words<const N: usize>(name: &'static str, v: &[u8]) -> Result<[u32; N], AttrError> {
    let mut out = [0; N];
    for (i, w) in out.iter_mut().enumerate() {
        *w = u32_at(v, 4 * i).ok_or(AttrError::Short {
            name,
            len: v.len(),
            need: 4 * N,
        })?;
    }
    Ok(out)
}

/// Walk the attributes that follow a message's fixed header (`start`
/// bytes into `payload`), handing each (type, value) to `on_attr`. Returns
/// the first problem: one `on_attr` reports (the walk goes on), or a
/// broken list (the walk ends there). Allocates only for a problem.
pub(super) fn walk_attrs(
    payload: &[u8],
    start: usize,
    mut on_attr: impl FnMut(u16, &[u8]) -> Result<(), AttrError>,
) -> Option<AttrError> {
    let mut first = None;
    let mut offset = start;
    for nla in NlasIterator::new(payload.get(start..).unwrap_or_default()) {
        match nla {
            Ok(nla) => {
                if let Err(e) = on_attr(nla.kind(), nla.value()) {
                    first.get_or_insert(e);
                }
                offset += (usize::from(nla.length()) + NLA_ALIGNTO - 1) & !(NLA_ALIGNTO - 1);
            }
            Err(e) => {
                first.get_or_insert(AttrError::Framing {
                    offset,
                    reason: e.to_string(),
                });
            }
        }
    }
    first
}

/// One decoded socket message, before the caller decides to keep it.
/// Decoding the header allocates nothing, and neither does `decode`
/// (but for a problem's text), so a dump costs allocations for the
/// sockets kept, not for every socket the kernel sent.
pub struct Entry<'a> {
    pub proto: Proto,
    pub header: InetResponseHeader,
    payload: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Decode the fixed header of one inet_diag message payload.
    pub fn parse(proto: Proto, payload: &'a [u8]) -> Result<Self, String> {
        let header = InetResponseHeader::parse(payload).map_err(|e| e.to_string())?;
        Ok(Entry {
            proto,
            header,
            payload,
        })
    }

    pub fn family(&self) -> Family {
        if self.header.family == AF_INET6 {
            Family::Inet6
        } else {
            Family::Inet
        }
    }
    pub fn state(&self) -> TcpState {
        TcpState::from_kernel(self.header.state)
    }
    pub fn inode(&self) -> Inode {
        Inode(u64::from(self.header.inode))
    }
    pub fn local(&self) -> (IpAddr, u16) {
        (
            self.header.socket_id.source_address,
            self.header.socket_id.source_port,
        )
    }

    pub fn request_sock(&self) -> RequestSock {
        let (local_addr, local_port) = self.local();
        RequestSock {
            netns: 0,
            family: self.family(),
            local_addr,
            local_port,
        }
    }

    /// The full socket, attributes included, and the first attribute
    /// that could not be decoded (the socket then lacks what it carried;
    /// `AttrProblems` counts them).
    ///
    /// The attributes are walked here rather than through the crate's
    /// `InetResponse`: that fails the whole list on one bad attribute,
    /// copies every attribute it does not know (allocations per socket),
    /// and its `MemInfo` needs all nine words, where an older kernel sends
    /// `INET_DIAG_SKMEMINFO` without the last (`SK_MEMINFO_DROPS`).
    pub fn decode(self) -> (Socket, Option<AttrError>) {
        let (mut drops, mut rcvbuf) = (None, None);
        let problem = walk_attrs(self.payload, self.header.buffer_len(), |kind, v| {
            if kind == INET_DIAG_SKMEMINFO {
                let [_, buf] = words::<{ SK_MEMINFO_RCVBUF + 1 }>("INET_DIAG_SKMEMINFO", v)?;
                rcvbuf = Some(buf);
                drops = u32_at(v, 4 * SK_MEMINFO_DROPS);
            }
            Ok(())
        });
        let h = &self.header;
        let id = &h.socket_id;
        let socket = Socket {
            inode: self.inode(),
            cookie: u64::from_ne_bytes(id.cookie),
            proto: self.proto,
            family: self.family(),
            state: self.state(),
            local_addr: id.source_address,
            local_port: id.source_port,
            remote_addr: id.destination_address,
            remote_port: id.destination_port,
            ifindex: id.interface_id,
            uid: Some(h.uid),
            rqueue: h.recv_queue,
            wqueue: h.send_queue,
            drops,
            rcvbuf,
            unix: None,
        };
        (socket, problem)
    }
}

/// Walk the netlink messages of one received inet_diag datagram, handing
/// each socket to `on_entry`.
pub fn parse_dump(
    proto: Proto,
    buf: &[u8],
    mut on_entry: impl FnMut(Entry<'_>),
) -> Result<DumpStatus, DecodeError> {
    walk_messages(buf, |payload| {
        on_entry(Entry::parse(proto, payload)?);
        Ok(())
    })
}

/// Walk the netlink messages of one received sock_diag datagram, handing
/// each `SOCK_DIAG_BY_FAMILY` payload to `on_payload` (which may reject it
/// as malformed). Handles multipart dumps, NLMSG_DONE and NLMSG_ERROR; a
/// message cut short, or trailing bytes too few for a header, is an error.
/// Reads the datagram in place: no allocation but for an error's text.
pub fn walk_messages(
    buf: &[u8],
    mut on_payload: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<DumpStatus, DecodeError> {
    let mut off = 0;
    while let Some(rest) = buf.get(off..).filter(|r| !r.is_empty()) {
        let fail = |reason: String| DecodeError {
            offset: off,
            reason,
        };
        let msg = NetlinkBuffer::new_checked(rest).map_err(|e| fail(e.to_string()))?;
        let payload = msg.payload();
        match msg.message_type() {
            NLMSG_DONE => return Ok(DumpStatus::Done),
            NLMSG_ERROR => {
                let err = ErrorBuffer::new_checked(payload).map_err(|e| fail(e.to_string()))?;
                // No code: an ACK, not an error.
                if let Some(code) = err.code() {
                    return Ok(DumpStatus::Error(code.get().saturating_neg()));
                }
            }
            SOCK_DIAG_BY_FAMILY => on_payload(payload).map_err(fail)?,
            NLMSG_NOOP => {}
            // Anything newer: skip.
            _ => {}
        }
        let align = usize::from(NLMSG_ALIGNTO);
        off += (msg.length() as usize + align - 1) & !(align - 1);
    }
    Ok(DumpStatus::More)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn request_with_filter_patches_length() {
        let plain = build_request(Proto::Tcp, Family::Inet, STATE_LISTEN, None, 7);
        assert_eq!(plain.len(), 16 + 56);
        let filtered = build_request(Proto::Tcp, Family::Inet, STATE_LISTEN, Some(&[8000]), 7);
        assert_eq!(filtered.len(), 16 + 56 + 4 + 16);
        assert_eq!(
            u32::from_ne_bytes([filtered[0], filtered[1], filtered[2], filtered[3]]),
            92
        );
        // nlattr header: len 20, type INET_DIAG_REQ_BYTECODE (1)
        assert_eq!(&filtered[72..76], &[20, 0, 1, 0]);
        // the request body: AF_INET, TCP, SKMEMINFO bit (1 << 6), states LISTEN
        assert_eq!(&filtered[16..24], &[2, 6, 64, 0, 0, 4, 0, 0]);
        // nlmsg_type SOCK_DIAG_BY_FAMILY (20), flags REQUEST|DUMP (0x301), seq 7
        assert_eq!(&filtered[4..12], &[20, 0, 0x01, 0x03, 7, 0, 0, 0]);
    }

    /// One LISTEN socket 127.0.0.1:8000, inode 7288, 7 waiting of 50, then DONE.
    #[rustfmt::skip]
    fn captured_dump() -> Vec<u8> {
        let mut v = vec![
            88, 0, 0, 0,       // nlmsg_len: 16 + 72
            20, 0,             // SOCK_DIAG_BY_FAMILY
            2, 0,              // NLM_F_MULTI
            1, 0, 0, 0,  0, 0, 0, 0,  // seq, pid
            2,                 // family AF_INET
            10,                // state LISTEN
            0, 0,              // timer, retrans
            0x1f, 0x40,        // sport 8000 (big endian)
            0, 0,              // dport
            127, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0, // src
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,   // dst
            0, 0, 0, 0,        // ifindex
            2, 0, 0, 0, 0, 0, 0, 0, // cookie
            0, 0, 0, 0,        // expires
            7, 0, 0, 0,        // rqueue: accept queue depth
            50, 0, 0, 0,       // wqueue: backlog
            0, 0, 0, 0,        // uid
            0x78, 0x1c, 0, 0,  // inode 7288
        ];
        v.extend_from_slice(&[20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn parses_a_listener_and_done() {
        let buf = captured_dump();
        let mut got = Vec::new();
        let status = parse_dump(Proto::Tcp, &buf, |e| got.push(e.decode().0)).unwrap();
        assert_eq!(status, DumpStatus::Done);
        assert_eq!(got.len(), 1);
        let s = &got[0];
        assert_eq!(s.inode, Inode(7288));
        assert_eq!(s.state, TcpState::Listen);
        assert_eq!(s.local_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s.local_port, 8000);
        assert_eq!((s.rqueue, s.wqueue), (7, 50));
        assert_eq!(s.cookie, 2);
        assert_eq!(s.drops, None);
    }

    /// An unconnected UDP socket 127.0.0.1:5353, inode 9, 7680 bytes queued,
    /// with INET_DIAG_SKMEMINFO: rcvbuf 8192, 174 drops.
    #[rustfmt::skip]
    fn udp_message() -> Vec<u8> {
        vec![
            128, 0, 0, 0,      // nlmsg_len: 16 + 72 + 40
            20, 0, 2, 0,       // SOCK_DIAG_BY_FAMILY, NLM_F_MULTI
            1, 0, 0, 0,  0, 0, 0, 0, // seq, pid
            2,                 // family AF_INET
            7,                 // state CLOSE: unconnected
            0, 0,              // timer, retrans
            0x14, 0xe9,        // sport 5353 (big endian)
            0, 0,              // dport 0
            127, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0, // src
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,   // dst
            0, 0, 0, 0,        // ifindex
            3, 0, 0, 0, 0, 0, 0, 0, // cookie
            0, 0, 0, 0,        // expires
            0, 30, 0, 0,       // rqueue: 7680 bytes (sk_rmem_alloc)
            0, 0, 0, 0,        // wqueue
            0, 0, 0, 0,        // uid
            9, 0, 0, 0,        // inode
            // INET_DIAG_SKMEMINFO (7): len 4 + 9 × 4
            40, 0, 7, 0,
            0, 30, 0, 0,       // SK_MEMINFO_RMEM_ALLOC 7680
            0, 32, 0, 0,       // SK_MEMINFO_RCVBUF 8192
            0, 0, 0, 0,        // WMEM_ALLOC
            0, 64, 3, 0,       // SNDBUF 212992
            0, 2, 0, 0,        // FWD_ALLOC 512
            0, 0, 0, 0,        // WMEM_QUEUED
            0, 0, 0, 0,        // OPTMEM
            0, 0, 0, 0,        // BACKLOG
            174, 0, 0, 0,      // SK_MEMINFO_DROPS 174
        ]
    }

    #[test]
    fn parses_a_udp_socket_with_meminfo() {
        let mut got = Vec::new();
        let status = parse_dump(Proto::Udp, &udp_message(), |e| got.push(e.decode())).unwrap();
        assert_eq!(status, DumpStatus::More);
        let (s, problem) = &got[0];
        assert_eq!(*problem, None);
        assert_eq!((s.proto, s.state), (Proto::Udp, TcpState::Close));
        assert!(s.is_listener(), "bound and unconnected: it takes datagrams");
        assert!(!s.is_tcp_listener());
        assert_eq!((s.local_port, s.inode), (5353, Inode(9)));
        assert_eq!(s.rqueue, 7680);
        assert_eq!((s.rcvbuf, s.drops), (Some(8192), Some(174)));
        let udp = build_request(Proto::Udp, Family::Inet6, STATE_CLOSE, None, 1);
        // AF_INET6, IPPROTO_UDP (17), SKMEMINFO, states CLOSE (1 << 7)
        assert_eq!(&udp[16..24], &[10, 17, 64, 0, 0x80, 0, 0, 0]);
    }

    #[test]
    fn error_and_truncation() {
        #[rustfmt::skip]
        let err = [20, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xff, 0xff, 0xff]; // -22
        let parse = |b: &[u8]| parse_dump(Proto::Tcp, b, |_| {});
        assert_eq!(parse(&err).unwrap(), DumpStatus::Error(22));
        let buf = captured_dump();
        assert!(parse(&buf[..40]).is_err());
        // A datagram that ends between messages is "more to come".
        assert_eq!(parse(&buf[..88]).unwrap(), DumpStatus::More);
    }

    /// `udp_message()`'s socket with `attrs` in place of its attributes.
    fn udp_with_attrs(attrs: &[u8]) -> Vec<u8> {
        let mut v = udp_message()[..16 + 72].to_vec();
        v.extend_from_slice(attrs);
        let len = v.len() as u32;
        v[..4].copy_from_slice(&len.to_ne_bytes());
        v
    }

    fn decode_one(buf: &[u8]) -> (Socket, Option<AttrError>) {
        let mut got = Vec::new();
        parse_dump(Proto::Udp, buf, |e| got.push(e.decode())).unwrap();
        assert_eq!(got.len(), 1);
        got.remove(0)
    }

    /// The header fields of `udp_message()`, intact.
    fn assert_header_kept(s: &Socket) {
        assert_eq!((s.inode, s.local_port, s.rqueue), (Inode(9), 5353, 7680));
        assert_eq!((s.state, s.cookie), (TcpState::Close, 3));
    }

    #[test]
    fn a_short_meminfo_keeps_the_socket_and_says_so() {
        // INET_DIAG_SKMEMINFO with one word: no SK_MEMINFO_RCVBUF.
        let (s, problem) = decode_one(&udp_with_attrs(&[8, 0, 7, 0, 0, 30, 0, 0]));
        assert_header_kept(&s);
        assert_eq!((s.rcvbuf, s.drops), (None, None));
        assert_eq!(
            problem,
            Some(AttrError::Short {
                name: "INET_DIAG_SKMEMINFO",
                len: 4,
                need: 8
            })
        );
    }

    #[test]
    fn an_older_kernels_meminfo_has_no_drops() {
        // Eight words: up to SK_MEMINFO_BACKLOG, no SK_MEMINFO_DROPS.
        #[rustfmt::skip]
        let (s, problem) = decode_one(&udp_with_attrs(&[
            36, 0, 7, 0,
            0, 30, 0, 0,  0, 32, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,  0, 0, 0, 0,
        ]));
        assert_eq!(problem, None);
        assert_eq!((s.rcvbuf, s.drops), (Some(8192), None));
    }

    #[test]
    fn a_broken_attribute_list_keeps_what_came_before() {
        let mut attrs = udp_message()[16 + 72..].to_vec(); // SKMEMINFO, 40 bytes
        attrs.extend_from_slice(&[2, 0, 8, 0]); // nla_len 2: below the header
        let (s, problem) = decode_one(&udp_with_attrs(&attrs));
        assert_header_kept(&s);
        assert_eq!((s.rcvbuf, s.drops), (Some(8192), Some(174)));
        match problem {
            // After the 72-byte inet_diag_msg and the 40-byte SKMEMINFO.
            Some(AttrError::Framing { offset: 112, .. }) => {}
            other => panic!("want a framing problem at byte 112, got {other:?}"),
        }
        // An attribute longer than the message: framing, at its start.
        let (s, problem) = decode_one(&udp_with_attrs(&[200, 0, 7, 0, 0, 0, 0, 0]));
        assert_header_kept(&s);
        assert!(
            matches!(problem, Some(AttrError::Framing { offset: 72, .. })),
            "{problem:?}"
        );
    }

    #[test]
    fn problems_become_one_counted_warning() {
        let mut p = AttrProblems::default();
        p.note(Inode(1), None);
        assert_eq!(p.warning(), None);
        let short = |len| AttrError::Short {
            name: "INET_DIAG_SKMEMINFO",
            len,
            need: 8,
        };
        p.note(Inode(7), Some(short(4)));
        let mut unix = AttrProblems::default();
        unix.note(Inode(8), Some(short(0)));
        unix.note(Inode(9), Some(short(2)));
        p.merge(unix);
        let w = p.warning().unwrap();
        assert_eq!((w.kind, w.count), (WarningKind::AttributesUndecoded, 3));
        assert_eq!(
            w.detail.as_deref(),
            Some("socket inode 7: INET_DIAG_SKMEMINFO is 4 bytes, needs 8")
        );
        assert!(
            w.message().starts_with("3 sockets came with attributes"),
            "{}",
            w.message()
        );
    }

    #[test]
    fn noop_and_ack_are_skipped_trailing_bytes_are_not() {
        #[rustfmt::skip]
        let mut buf = vec![
            16, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,  0, 0, 0, 0,  // NLMSG_NOOP
            20, 0, 0, 0,  2, 0, 0, 0,  1, 0, 0, 0,  0, 0, 0, 0,  // NLMSG_ERROR,
            0, 0, 0, 0,                                          //   code 0: an ACK
        ];
        buf.extend_from_slice(&captured_dump());
        let mut kept = 0;
        let status = parse_dump(Proto::Tcp, &buf, |_| kept += 1).unwrap();
        assert_eq!((status, kept), (DumpStatus::Done, 1));
        // Bytes after a message too few for a header: a cut datagram.
        let mut cut = captured_dump()[..88].to_vec();
        cut.extend_from_slice(&[8, 0, 0, 0, 3, 0, 0, 0]);
        let e = parse_dump(Proto::Tcp, &cut, |_| {}).unwrap_err();
        assert_eq!(e.offset, 88);
        // An NLMSG_ERROR too short for its code.
        let err = [18, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xff];
        assert!(parse_dump(Proto::Tcp, &err, |_| {}).is_err());
    }

    #[test]
    fn a_port_list_too_long_to_encode_is_not_sent() {
        let ports: Vec<u16> = (1..=4000).collect();
        let req = build_request(Proto::Tcp, Family::Inet, STATE_LISTEN, Some(&ports), 1);
        assert_eq!(req.len(), 16 + 56);
        let empty = build_request(Proto::Tcp, Family::Inet, STATE_LISTEN, Some(&[]), 1);
        assert_eq!(empty.len(), 16 + 56);
    }
}
