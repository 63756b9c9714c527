//! Pure inet_diag encoding and decoding (TCP and UDP): request bytes (with
//! the in-kernel port filter the crate cannot express) and dump messages →
//! `Socket`; and the netlink message walk every sock_diag dump shares (unix
//! dumps decode their payloads in `unixdiag`). No I/O; every function here
//! is tested on bytes.

use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    inet::{
        nlas::Nla, ExtensionFlags, InetRequest, InetResponse, InetResponseHeader, SocketId,
        StateFlags,
    },
    SockDiagMessage, AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP,
};

use crate::model::{Family, Inode, Proto, RequestSock, Socket, TcpState};

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

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;

fn op(code: u8, yes: u8, no: u16) -> [u8; 4] {
    let n = no.to_ne_bytes();
    [code, yes, n[0], n[1]]
}

/// Bytecode for `sport == p1 || sport == p2 || ...` (empty ports: none).
///
/// `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }`: the kernel walks
/// it, jumping `yes` bytes on a match and `no` bytes otherwise; the socket
/// passes when it lands exactly on the end, and a jump 4 bytes past the end
/// rejects. Each port is `S_GE p && S_LE p` (16 bytes; S_EQ would be 8 but
/// needs a 4.16+ kernel) followed, except for the last, by a JMP to the end:
/// the same layout `ss` builds for `sport = :a or sport = :b`.
pub fn port_filter_bytecode(ports: &[u16]) -> Vec<u8> {
    let clause = 16usize;
    let total = ports.len() * (clause + 4) - if ports.is_empty() { 0 } else { 4 };
    let mut bc = Vec::with_capacity(total);
    for (i, &port) in ports.iter().enumerate() {
        let start = bc.len();
        let end = start + clause;
        // A failed comparison jumps to 4 bytes past this clause: over the
        // JMP to the next clause, or (last clause) past the end = reject.
        let reject = |at: usize| (end - at + 4) as u16;
        bc.extend_from_slice(&op(INET_DIAG_BC_S_GE, 8, reject(start)));
        bc.extend_from_slice(&op(0, 0, port));
        bc.extend_from_slice(&op(INET_DIAG_BC_S_LE, 8, reject(start + 8)));
        bc.extend_from_slice(&op(0, 0, port));
        if i + 1 < ports.len() {
            // Matched: jump over the remaining clauses to the end.
            let rest = total - (end + 4);
            bc.extend_from_slice(&op(INET_DIAG_BC_JMP, 4, (rest + 4) as u16));
        }
    }
    debug_assert_eq!(bc.len(), total);
    bc
}

/// A complete `SOCK_DIAG_BY_FAMILY` dump request for TCP or UDP sockets of
/// one inet family in `states`, optionally filtered in the kernel to `ports`.
/// (`Proto::Unix` or `Family::Unix` here is a caller bug: it asks for TCP
/// over IPv6, which the caller's own filter then drops.)
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

    if let Some(ports) = ports.filter(|p| !p.is_empty()) {
        // The crate has no INET_DIAG_REQ_BYTECODE: append the attribute
        // (struct nlattr { u16 len; u16 type; } + bytecode, 4-aligned) and
        // patch nlmsg_len.
        let bc = port_filter_bytecode(ports);
        let nla_len = (4 + bc.len()) as u16;
        buf.extend_from_slice(&nla_len.to_ne_bytes());
        buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        buf.extend_from_slice(&bc);
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        let len = (buf.len() as u32).to_ne_bytes();
        buf[..4].copy_from_slice(&len);
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

/// One decoded socket message, before the caller decides to keep it.
/// Decoding the header allocates nothing; only `into_socket` reads the
/// attributes, so a dump costs allocations for the sockets kept, not for
/// every socket the kernel sent.
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

    /// The full socket, attributes included.
    pub fn into_socket(self) -> Socket {
        let mem = InetResponse::parse(self.payload).ok().and_then(|r| {
            r.nlas.iter().find_map(|n| match n {
                Nla::MemInfo(m) => Some((m.drops, m.receive_queue_max)),
                _ => None,
            })
        });
        let h = &self.header;
        let id = &h.socket_id;
        Socket {
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
            drops: mem.map(|m| m.0),
            rcvbuf: mem.map(|m| m.1),
            unix: None,
        }
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
/// as malformed). Handles multipart dumps, NLMSG_DONE and NLMSG_ERROR.
pub fn walk_messages(
    buf: &[u8],
    mut on_payload: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<DumpStatus, DecodeError> {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let u32_at = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let len = u32_at(off) as usize;
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err(DecodeError {
                offset: off,
                reason: format!(
                    "message length {len} does not fit the {} bytes received",
                    buf.len()
                ),
            });
        }
        let payload = &buf[off + NLMSG_HDRLEN..off + len];
        match kind {
            NLMSG_DONE => return Ok(DumpStatus::Done),
            NLMSG_ERROR => {
                let code = if payload.len() >= 4 {
                    i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]])
                } else {
                    0
                };
                if code == 0 {
                    // An ACK, not an error.
                } else {
                    return Ok(DumpStatus::Error(-code));
                }
            }
            netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY => {
                on_payload(payload).map_err(|reason| DecodeError {
                    offset: off,
                    reason,
                })?;
            }
            _ => {} // NLMSG_NOOP and anything new: skip.
        }
        off += (len + 3) & !3;
    }
    Ok(DumpStatus::More)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn bytecode_one_port() {
        // sport >= 8000 && sport <= 8000; a miss jumps 4 past the end.
        #[rustfmt::skip]
        let want: [u8; 16] = [
            2, 8, 20, 0,          // S_GE, yes +8, no +20 (16 left + 4: reject)
            0, 0, 0x40, 0x1f,     // operand: port 8000 in `no`
            3, 8, 12, 0,          // S_LE, yes +8, no +12 (8 left + 4: reject)
            0, 0, 0x40, 0x1f,     // operand: port 8000
        ];
        assert_eq!(port_filter_bytecode(&[8000]), want);
    }

    #[test]
    fn bytecode_two_ports_or() {
        #[rustfmt::skip]
        let want: [u8; 36] = [
            2, 8, 20, 0,  0, 0, 80, 0,   // S_GE 80, miss → +20 = second clause
            3, 8, 12, 0,  0, 0, 80, 0,   // S_LE 80, miss → +12 = second clause
            1, 4, 20, 0,                 // JMP +20: matched, to the end (36)
            2, 8, 20, 0,  0, 0, 81, 0,   // S_GE 81, miss → past the end
            3, 8, 12, 0,  0, 0, 81, 0,   // S_LE 81
        ];
        assert_eq!(port_filter_bytecode(&[80, 81]), want);
        assert!(port_filter_bytecode(&[]).is_empty());
    }

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
        let status = parse_dump(Proto::Tcp, &buf, |e| got.push(e.into_socket())).unwrap();
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
        let status = parse_dump(Proto::Udp, &udp_message(), |e| got.push(e.into_socket())).unwrap();
        assert_eq!(status, DumpStatus::More);
        let s = &got[0];
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
}
