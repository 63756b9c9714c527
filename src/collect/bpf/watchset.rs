//! The values of the `watch` and `tick` maps (`struct watch_set` and
//! `struct watch_tick` in bpf/holders.h), written from user space: which
//! socket inodes a tick wants the holders of, and which processes it must
//! read. The program fills in each inode's file as it finds it; user
//! space writes only inodes, pids and filters and never reads a map back.
//! Pure; no I/O.

/// Entries a set holds (`WATCH_MAX`).
pub const MAX: usize = 256;
/// 64-bit words in each Bloom filter (`BLOOM_WORDS`).
const BLOOM_WORDS: usize = 16;

/// The value's size: n, unresolved, two filters, inodes, files.
pub const VALUE_LEN: usize = 8 + 2 * BLOOM_WORDS * 8 + 2 * MAX * 8;

const INO_BLOOM_AT: usize = 8;
const INO_AT: usize = 8 + 2 * BLOOM_WORDS * 8;

/// `struct watch_tick`'s size: since, the holders' filter.
pub const TICK_LEN: usize = 8 + BLOOM_WORDS * 8;

/// `bloom_bit` of bpf/holders.h: the top 10 bits of a Fibonacci hash.
fn bloom_bit(v: u64) -> usize {
    (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize
}

/// The filter holding every value of `vals`, as bytes.
fn bloom(vals: impl Iterator<Item = u64>) -> [u8; BLOOM_WORDS * 8] {
    let mut words = [0u64; BLOOM_WORDS];
    for v in vals {
        let b = bloom_bit(v);
        words[b >> 6] |= 1 << (b & 63);
    }
    let mut out = [0u8; BLOOM_WORDS * 8];
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_ne_bytes());
    }
    out
}

/// The `tick` value: read the tables of the processes in `holders` and
/// of those started at or after `since` (CLOCK_MONOTONIC ns; 0: all).
pub fn tick(since: u64, holders: &[u32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(TICK_LEN);
    v.extend_from_slice(&since.to_ne_bytes());
    v.extend_from_slice(&bloom(holders.iter().map(|&p| u64::from(p))));
    v
}

/// The map value watching `inodes` (at most `MAX`; `None` if more), with
/// every file still to find. An empty list is the empty set: the program
/// then emits nothing.
pub fn value(inodes: &[u64]) -> Option<Vec<u8>> {
    if inodes.len() > MAX {
        return None;
    }
    let mut v = vec![0u8; VALUE_LEN];
    let n = inodes.len() as u32;
    v[0..4].copy_from_slice(&n.to_ne_bytes());
    // Nonzero: files to find (every entry's is unknown).
    v[4..8].copy_from_slice(&n.to_ne_bytes());
    for (i, &ino) in inodes.iter().enumerate() {
        let at = INO_AT + i * 8;
        v[at..at + 8].copy_from_slice(&ino.to_ne_bytes());
    }
    v[INO_BLOOM_AT..INO_BLOOM_AT + BLOOM_WORDS * 8].copy_from_slice(&bloom(inodes.iter().copied()));
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(v: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(v[at..at + 4].try_into().unwrap())
    }

    fn u64_at(v: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(v[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn layout_matches_struct_watch_set() {
        // struct watch_set: u32 n, u32 unresolved, u64 ino_bloom[16],
        // u64 file_bloom[16], u64 ino[256], u64 file[256].
        assert_eq!(VALUE_LEN, 4 + 4 + 16 * 8 + 16 * 8 + 256 * 8 + 256 * 8);
        let v = value(&[7288, 1 << 40]).unwrap();
        assert_eq!((u32_at(&v, 0), u32_at(&v, 4)), (2, 2));
        assert_eq!(u64_at(&v, 264), 7288);
        assert_eq!(u64_at(&v, 272), 1 << 40);
        assert_eq!(u64_at(&v, 280), 0);
        // Files and their filter start empty.
        assert!(v[136..264].iter().all(|&b| b == 0));
        assert!(v[264 + 256 * 8..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_filter_has_each_inode_and_one_bit_per_inode() {
        // 7288 * 0x9E3779B97F4A7C15 mod 2^64, top 10 bits, worked by hand
        // with Python: (7288 * 0x9E3779B97F4A7C15 % 2**64) >> 54 == 237.
        assert_eq!(bloom_bit(7288), 237);
        let v = value(&[7288]).unwrap();
        let word = u64_at(&v, 8 + (237 / 64) * 8);
        assert_eq!(word, 1 << (237 % 64));
        let set: u32 = (0..16).map(|i| u64_at(&v, 8 + i * 8).count_ones()).sum();
        assert_eq!(set, 1);
    }

    #[test]
    fn tick_layout_and_filter() {
        // struct watch_tick: u64 since, u64 pid_bloom[16].
        assert_eq!(TICK_LEN, 8 + 16 * 8);
        let t = tick(123_456_789, &[7288]);
        assert_eq!(t.len(), TICK_LEN);
        assert_eq!(u64_at(&t, 0), 123_456_789);
        assert_eq!(u64_at(&t, 8 + (237 / 64) * 8), 1 << (237 % 64));
        let set: u32 = (0..16).map(|i| u64_at(&t, 8 + i * 8).count_ones()).sum();
        assert_eq!(set, 1);
    }

    #[test]
    fn too_many_inodes_is_refused_and_empty_is_all_zero() {
        let many: Vec<u64> = (1..=MAX as u64 + 1).collect();
        assert!(value(&many).is_none());
        assert!(value(&many[..MAX]).is_some());
        let empty = value(&[]).unwrap();
        assert!(empty.iter().all(|&b| b == 0));
    }
}
