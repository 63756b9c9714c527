//! Pure unix_diag encoding and decoding: the dump request for unix sockets
//! and one `SOCK_DIAG_BY_FAMILY` payload → `Socket` (with `UnixInfo`).
//! No I/O (the netlink loop is in `netlink`, the path `stat` in `pass`);
//! every function here is tested on bytes.
//!
//! Kernel facts (net/unix/diag.c): for a LISTEN socket `UNIX_DIAG_RQLEN`
//! carries the receive-queue length — one skb per connection waiting to be
//! accepted — and `sk_max_ack_backlog` (the listen() backlog after the
//! somaxconn clamp); `unix_recvq_full()` refuses a new connection when the
//! length is greater than the backlog, so a full queue holds backlog + 1,
//! as for TCP. For other sockets it carries the bytes waiting to be read
//! and the bytes sent but not yet read by the peer.
//!
//! The attributes are walked here rather than through the crate's
//! `UnixResponse`: its `Vfs` fields are private, it does not know
//! `UNIX_DIAG_UID`, and it rejects a path attribute without a trailing NUL
//! (which would fail the whole dump for one odd socket). An attribute
//! that cannot be decoded leaves its field empty and is reported with the
//! socket (`AttrError`), never silently skipped.

use netlink_packet_core::{
    Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{
        SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, UNIX_DIAG_ICONS, UNIX_DIAG_NAME, UNIX_DIAG_PEER,
        UNIX_DIAG_RQLEN, UNIX_DIAG_VFS,
    },
    unix::{ShowFlags, StateFlags, UnixRequest, UnixResponseHeader},
    SockDiagMessage,
};

use super::diag::{u32_at, walk_attrs, words, AttrError};
use crate::model::{Family, Inode, Proto, SockType, Socket, TcpState, UnixInfo, UnixName, Vfs};

/// `UNIX_DIAG_UID` (Linux 5.3+): the socket owner. Not in the crate.
const UNIX_DIAG_UID: u16 = 7;
/// `UDIAG_SHOW_UID`: ask for it. Older kernels ignore the bit.
const UDIAG_SHOW_UID: u32 = 1 << 6;

/// What every unix dump asks for: the name, the bound file, the peer, the
/// pending connections of a listener, the queue lengths and the owner.
pub fn show_flags() -> u32 {
    (ShowFlags::NAME | ShowFlags::VFS | ShowFlags::PEER | ShowFlags::ICONS | ShowFlags::RQLEN)
        .bits()
        | UDIAG_SHOW_UID
}

/// A complete `SOCK_DIAG_BY_FAMILY` dump request for unix sockets whose
/// state bit is in `states` (`1 << TCP_LISTEN` for listeners).
pub fn build_request(states: u32, seq: u32) -> Vec<u8> {
    let req = UnixRequest {
        state_flags: StateFlags::from_bits_retain(states),
        inode: 0,
        show_flags: ShowFlags::from_bits_retain(show_flags()),
        // Ignored for a dump; all-ones is the kernel's "no cookie".
        cookie: [0xff; 8],
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::UnixRequest(req)),
    );
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// The kernel's `dev_t` (`MAJOR << 20 | MINOR`, what `d_sb->s_dev` holds)
/// in the encoding `stat(2)` returns in `st_dev`.
pub fn dev_from_kernel(dev: u32) -> u64 {
    libc::makedev(dev >> 20, dev & 0xf_ffff)
}

/// `UNIX_DIAG_NAME`: `sun_path` as bound. A leading NUL makes it abstract
/// (the rest, every byte, is the name); otherwise a path, NUL-terminated
/// by the kernel (tolerated without).
pub fn parse_name(value: &[u8]) -> UnixName {
    match value.split_first() {
        Some((0, rest)) => UnixName::Abstract(rest.to_vec()),
        _ => {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            UnixName::Path(value[..end].to_vec())
        }
    }
}

fn sock_type(kind: u8) -> SockType {
    match kind {
        SOCK_STREAM => SockType::Stream,
        SOCK_DGRAM => SockType::Dgram,
        SOCK_SEQPACKET => SockType::Seqpacket,
        _ => SockType::Unknown,
    }
}

/// Decode one unix_diag message payload (`struct unix_diag_msg` and its
/// attributes) into a socket, with the first attribute that could not be
/// decoded (its field is then empty). Only a payload too short for the
/// fixed header is an error.
pub fn parse_socket(payload: &[u8]) -> Result<(Socket, Option<AttrError>), String> {
    let header = UnixResponseHeader::parse(payload).map_err(|e| e.to_string())?;
    let mut info = UnixInfo {
        sock_type: sock_type(header.kind),
        name: None,
        vfs: None,
        peer: None,
        pending: None,
        path_status: None,
    };
    let (mut rqueue, mut wqueue, mut uid) = (0, 0, None);
    let problem = walk_attrs(payload, header.buffer_len(), |kind, v| {
        match kind {
            UNIX_DIAG_NAME => info.name = Some(parse_name(v)),
            UNIX_DIAG_VFS => {
                let [ino, dev] = words("UNIX_DIAG_VFS", v)?;
                info.vfs = Some(Vfs {
                    ino: u64::from(ino),
                    dev: dev_from_kernel(dev),
                });
            }
            UNIX_DIAG_PEER => {
                let [peer] = words("UNIX_DIAG_PEER", v)?;
                info.peer = Some(Inode(u64::from(peer)));
            }
            UNIX_DIAG_ICONS => {
                if v.len() % 4 != 0 {
                    return Err(AttrError::Short {
                        name: "UNIX_DIAG_ICONS",
                        len: v.len(),
                        need: v.len().next_multiple_of(4),
                    });
                }
                info.pending = Some(
                    v.chunks_exact(4)
                        .filter_map(|c| u32_at(c, 0))
                        .map(|i| Inode(u64::from(i)))
                        .collect(),
                );
            }
            UNIX_DIAG_RQLEN => [rqueue, wqueue] = words("UNIX_DIAG_RQLEN", v)?,
            UNIX_DIAG_UID => {
                let [owner] = words("UNIX_DIAG_UID", v)?;
                uid = Some(owner);
            }
            _ => {} // MEMINFO, SHUTDOWN and anything newer.
        }
        Ok(())
    });
    let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let socket = Socket {
        inode: Inode(u64::from(header.inode)),
        cookie: u64::from_ne_bytes(header.cookie),
        proto: Proto::Unix,
        family: Family::Unix,
        state: TcpState::from_kernel(header.state),
        local_addr: unspecified,
        local_port: 0,
        remote_addr: unspecified,
        remote_port: 0,
        ifindex: 0,
        uid,
        rqueue,
        wqueue,
        drops: None,
        rcvbuf: None,
        unix: Some(info),
    };
    Ok((socket, problem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::diag::{walk_messages, DumpStatus};

    #[test]
    fn request_bytes() {
        let req = build_request(1 << 10, 9);
        #[rustfmt::skip]
        let want: [u8; 40] = [
            40, 0, 0, 0,            // nlmsg_len: 16 + 24
            20, 0,                  // SOCK_DIAG_BY_FAMILY
            0x01, 0x03,             // NLM_F_REQUEST | NLM_F_DUMP
            9, 0, 0, 0,             // seq
            0, 0, 0, 0,             // pid
            1,                      // sdiag_family AF_UNIX
            0,                      // sdiag_protocol
            0, 0,                   // pad
            0, 4, 0, 0,             // udiag_states: 1 << TCP_LISTEN
            0, 0, 0, 0,             // udiag_ino: 0 (a dump)
            0x5f, 0, 0, 0,          // udiag_show: NAME|VFS|PEER|ICONS|RQLEN|UID
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // udiag_cookie: none
        ];
        assert_eq!(req, want);
    }

    #[test]
    fn kernel_dev_to_st_dev() {
        // 0:26 (a tmpfs): kernel (0 << 20) | 26; stat says 26 (0x1a).
        assert_eq!(dev_from_kernel(26), 26);
        // 8:1 (/dev/sda1): kernel 0x0080_0001; stat says 0x801.
        assert_eq!(dev_from_kernel((8 << 20) | 1), 0x801);
        // 259:300 (nvme): minor above 255 moves to bits 20..
        assert_eq!(dev_from_kernel((259 << 20) | 300), libc::makedev(259, 300));
    }

    #[test]
    fn names() {
        assert_eq!(
            parse_name(b"/run/php/fpm.sock\0"),
            UnixName::Path(b"/run/php/fpm.sock".to_vec())
        );
        assert_eq!(parse_name(b"/tmp/x"), UnixName::Path(b"/tmp/x".to_vec()));
        // Abstract: the leading NUL goes, every other byte (NULs too) stays.
        assert_eq!(
            parse_name(b"\0my\0name"),
            UnixName::Abstract(b"my\0name".to_vec())
        );
        assert_eq!(
            UnixName::Abstract(b"sockmap".to_vec()).to_bytes(),
            b"@sockmap".to_vec()
        );
    }

    /// A LISTEN stream socket on /tmp/s.sock, inode 0x1234, 6 connections
    /// waiting of a backlog of 5, owned by uid 1000, then NLMSG_DONE.
    #[rustfmt::skip]
    fn captured_listener() -> Vec<u8> {
        let mut v = vec![
            116, 0, 0, 0,           // nlmsg_len: 16 + 100
            20, 0,                  // SOCK_DIAG_BY_FAMILY
            2, 0,                   // NLM_F_MULTI
            1, 0, 0, 0,  0, 0, 0, 0, // seq, pid
            // struct unix_diag_msg
            1,                      // udiag_family AF_UNIX
            1,                      // udiag_type SOCK_STREAM
            10,                     // udiag_state TCP_LISTEN
            0,                      // pad
            0x34, 0x12, 0, 0,       // udiag_ino 0x1234
            5, 0, 0, 0, 0, 0, 0, 0, // udiag_cookie
            // UNIX_DIAG_NAME: len 4 + 12, "/tmp/s.sock\0"
            16, 0, 0, 0,
            b'/', b't', b'm', b'p', b'/', b's', b'.', b's', b'o', b'c', b'k', 0,
            // UNIX_DIAG_VFS: len 12, ino 777, dev 0:26 (kernel encoding)
            12, 0, 1, 0,   0x09, 0x03, 0, 0,   26, 0, 0, 0,
            // UNIX_DIAG_ICONS: len 4 + 6 × 4, the waiting clients' inodes
            28, 0, 3, 0,
            1, 0, 0, 0,  2, 0, 0, 0,  3, 0, 0, 0,
            4, 0, 0, 0,  5, 0, 0, 0,  6, 0, 0, 0,
            // UNIX_DIAG_RQLEN: len 12, rqueue 6 (waiting), wqueue 5 (backlog)
            12, 0, 4, 0,   6, 0, 0, 0,   5, 0, 0, 0,
            // UNIX_DIAG_SHUTDOWN: len 5 (+3 padding), 0
            5, 0, 6, 0,   0, 0, 0, 0,
            // UNIX_DIAG_UID: len 8, 1000
            8, 0, 7, 0,   0xe8, 0x03, 0, 0,
        ];
        v.extend_from_slice(&[20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn parses_a_listener() {
        let buf = captured_listener();
        let mut got = Vec::new();
        let status = walk_messages(&buf, |p| {
            let (socket, problem) = parse_socket(p)?;
            assert_eq!(problem, None);
            got.push(socket);
            Ok(())
        })
        .unwrap();
        assert_eq!(status, DumpStatus::Done);
        assert_eq!(got.len(), 1);
        let s = &got[0];
        assert_eq!(s.inode, Inode(0x1234));
        assert_eq!(s.cookie, 5);
        assert_eq!(
            (s.proto, s.family, s.state),
            (Proto::Unix, Family::Unix, TcpState::Listen)
        );
        assert!(s.is_listener());
        assert_eq!((s.rqueue, s.wqueue), (6, 5));
        assert_eq!(s.uid, Some(1000));
        let u = s.unix.as_ref().unwrap();
        assert_eq!(u.sock_type, SockType::Stream);
        assert_eq!(u.name, Some(UnixName::Path(b"/tmp/s.sock".to_vec())));
        assert_eq!(u.vfs, Some(Vfs { ino: 777, dev: 26 }));
        assert_eq!(u.pending.as_ref().map(Vec::len), Some(6));
        assert_eq!(u.peer, None);
    }

    /// A connected seqpacket socket, inode 9, cookie 3, with no name and
    /// only PEER (inode 10).
    #[rustfmt::skip]
    const BARE: [u8; 24] = [
        1, 5, 1, 0,             // AF_UNIX, SOCK_SEQPACKET, ESTABLISHED, pad
        9, 0, 0, 0,             // inode 9
        3, 0, 0, 0, 0, 0, 0, 0, // cookie 3
        8, 0, 2, 0,  10, 0, 0, 0, // UNIX_DIAG_PEER: inode 10
    ];

    #[test]
    fn bare_socket() {
        let (s, problem) = parse_socket(&BARE).unwrap();
        assert_eq!(problem, None);
        let u = s.unix.as_ref().unwrap();
        assert_eq!(u.sock_type, SockType::Seqpacket);
        assert_eq!(u.peer, Some(Inode(10)));
        assert_eq!((u.name.clone(), s.uid), (None, None));
        assert!(!s.is_listener());
        // Too short for `struct unix_diag_msg`: no socket at all.
        assert!(parse_socket(&BARE[..10]).is_err());
    }

    #[test]
    fn a_broken_attribute_list_keeps_the_socket_and_says_so() {
        // PEER claims 200 bytes; 8 are there.
        let mut bad = BARE.to_vec();
        bad[16] = 200;
        let (s, problem) = parse_socket(&bad).unwrap();
        assert_eq!(
            (s.inode, s.cookie, s.state),
            (Inode(9), 3, TcpState::Established)
        );
        assert_eq!(s.unix.as_ref().unwrap().peer, None);
        match problem {
            Some(AttrError::Framing { offset: 16, .. }) => {}
            other => panic!("want a framing problem at byte 16, got {other:?}"),
        }
    }

    #[test]
    fn a_short_attribute_loses_only_its_field() {
        #[rustfmt::skip]
        let p = [
            1, 1, 10, 0,  0x34, 0x12, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0,
            // UNIX_DIAG_VFS: len 8, only 4 of its 8 value bytes
            8, 0, 1, 0,   0x09, 0x03, 0, 0,
            // UNIX_DIAG_ICONS: len 4 + 6, not whole inodes
            10, 0, 3, 0,  1, 0, 0, 0, 2, 0,  0, 0,
            // UNIX_DIAG_RQLEN: len 12, rqueue 6, wqueue 5 (still read)
            12, 0, 4, 0,  6, 0, 0, 0,  5, 0, 0, 0,
            // UNIX_DIAG_UID: len 6, half a uid
            6, 0, 7, 0,   0xe8, 0x03, 0, 0,
        ];
        let (s, problem) = parse_socket(&p).unwrap();
        assert_eq!((s.inode, s.rqueue, s.wqueue), (Inode(0x1234), 6, 5));
        let u = s.unix.as_ref().unwrap();
        assert_eq!((u.vfs, u.pending.as_ref(), s.uid), (None, None, None));
        // The first problem is the one reported.
        assert_eq!(
            problem,
            Some(AttrError::Short {
                name: "UNIX_DIAG_VFS",
                len: 4,
                need: 8
            })
        );
        assert_eq!(
            problem.map(|p| p.to_string()).as_deref(),
            Some("UNIX_DIAG_VFS is 4 bytes, needs 8")
        );
    }
}
