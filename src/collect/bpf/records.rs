//! The iterator's output, parsed: 24-byte native-endian records
//! (`struct holder_rec` in bpf/holders.h). Pure; no I/O.

/// `struct holder_rec`'s size.
pub const RECORD_LEN: usize = 24;

/// `fd` of the record that ends a task whose table was not read to the
/// end (too many sockets for one read of the iterator).
pub const FD_TRUNCATED: u32 = u32::MAX;

/// `fd` of a task's first record (task walk only): `ino` is its network
/// namespace's nsfs inode (0: none left).
pub const FD_TASK: u32 = u32::MAX - 1;

const SK: u32 = 1;
const REUSEPORT: u32 = 2;
const LISTEN: u32 = 8;
const QLEN_SHIFT: u32 = 8;

/// One socket fd the iterator saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub tgid: u32,
    pub fd: u32,
    pub ino: u64,
    /// The task whose fd table this is: `tgid`, or a thread with its own.
    pub tid: u32,
    sock: u32,
}

impl Record {
    /// SO_REUSEPORT of the socket, when its `struct sock` was read.
    pub fn reuseport(&self) -> Option<bool> {
        (self.sock & SK != 0).then_some(self.sock & REUSEPORT != 0)
    }

    /// The SYN queue length of a TCP listener (`icsk_accept_queue.qlen`),
    /// when the record is of one.
    pub fn syn_queue(&self) -> Option<u32> {
        (self.sock & (SK | LISTEN) == SK | LISTEN).then_some(self.sock >> QLEN_SHIFT)
    }

    pub fn is_truncated(&self) -> bool {
        self.fd == FD_TRUNCATED
    }

    pub fn is_task(&self) -> bool {
        self.fd == FD_TASK
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The records in `buf`. A trailing partial record (never written by the
/// kernel, which emits whole records) is ignored.
pub fn parse(buf: &[u8]) -> impl Iterator<Item = Record> + '_ {
    buf.chunks_exact(RECORD_LEN).map(|r| {
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&r[8..16]);
        Record {
            tgid: u32_at(r, 0),
            fd: u32_at(r, 4),
            ino: u64::from_ne_bytes(ino),
            tid: u32_at(r, 16),
            sock: u32_at(r, 20),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tgid: u32, fd: u32, ino: u64, tid: u32, sock: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tgid.to_ne_bytes()); // tgid
        v.extend_from_slice(&fd.to_ne_bytes()); // fd
        v.extend_from_slice(&ino.to_ne_bytes()); // socket inode
        v.extend_from_slice(&tid.to_ne_bytes()); // tid
        v.extend_from_slice(&sock.to_ne_bytes()); // HOLDER_* bits
        v
    }

    #[test]
    fn records_and_bits() {
        let mut buf = rec(100, 3, 7288, 100, 1 | 2 | 8 | (17 << 8));
        buf.extend(rec(101, 4, 1 << 40, 102, 1));
        buf.extend(rec(103, 5, 9, 103, 0));
        buf.extend(rec(104, u32::MAX, 0, 104, 0));
        buf.extend(rec(105, u32::MAX - 1, 4026531840, 105, 0));
        buf.extend_from_slice(&[1, 2, 3]); // partial: ignored
        let r: Vec<Record> = parse(&buf).collect();
        assert_eq!(r.len(), 5);
        assert_eq!(
            (r[0].tgid, r[0].fd, r[0].ino, r[0].tid),
            (100, 3, 7288, 100)
        );
        assert_eq!(r[0].reuseport(), Some(true));
        assert_eq!(r[0].syn_queue(), Some(17));
        assert_eq!(r[1].syn_queue(), None);
        assert_eq!(r[2].syn_queue(), None);
        assert_eq!((r[1].ino, r[1].tid), (1 << 40, 102));
        assert_eq!(r[1].reuseport(), Some(false));
        assert_eq!(r[2].reuseport(), None);
        assert!(!r[2].is_truncated());
        assert!(r[3].is_truncated());
        assert!(r[4].is_task() && !r[4].is_truncated() && !r[2].is_task());
    }
}
