//! The bytes `load` sends, so what comes back can be checked without
//! keeping a copy: stream (client, round) is a window into one shared
//! pseudo-random table, starting at an offset hashed from (client, round).
//! Different clients and rounds therefore send different bytes, and an echo
//! server that mixes up connections or rounds is caught. Pure: no I/O.

/// The table's period. A prime, so no power-of-two size or chunk boundary
/// lines up with it.
const PERIOD: usize = 1_048_573;
/// The longest slice handed out at once; the table repeats its first
/// `MAX_SLICE` bytes after `PERIOD` so every slice is contiguous.
pub(super) const MAX_SLICE: usize = 64 * 1024;

pub(super) struct Pattern {
    table: Vec<u8>,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Pattern {
    pub(super) fn new() -> Self {
        let mut table = Vec::with_capacity(PERIOD + MAX_SLICE);
        let mut state = 0x5eed_u64;
        while table.len() < PERIOD {
            state = splitmix64(state);
            let take = (PERIOD - table.len()).min(8);
            table.extend_from_slice(&state.to_le_bytes()[..take]);
        }
        table.extend_from_within(..MAX_SLICE);
        Pattern { table }
    }

    /// Where stream (client, round) starts in the table.
    pub(super) fn offset(client: u64, round: u32) -> usize {
        let h = splitmix64(client.wrapping_mul(0x1_0000_0001) ^ (u64::from(round) << 40));
        (h % PERIOD as u64) as usize
    }

    /// Bytes `pos..pos + len` of the stream starting at `offset`
    /// (`len` is capped at [`MAX_SLICE`]).
    pub(super) fn slice(&self, offset: usize, pos: u64, len: usize) -> &[u8] {
        let start = ((offset as u64 + pos) % PERIOD as u64) as usize;
        &self.table[start..start + len.min(MAX_SLICE)]
    }

    /// None if `data` is exactly the stream's bytes at `pos`, else the
    /// index in `data` of the first wrong byte and the byte expected there.
    pub(super) fn check(&self, offset: usize, pos: u64, data: &[u8]) -> Option<(usize, u8)> {
        let mut done = 0;
        while done < data.len() {
            let want = self.slice(offset, pos + done as u64, data.len() - done);
            let got = &data[done..done + want.len()];
            if got != want {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Some((done + i, want[i]));
            }
            done += want.len();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_one_continuous_stream() {
        let p = Pattern::new();
        let off = PERIOD - 10;
        let whole: Vec<u8> = (0..100u64).map(|i| p.slice(off, i, 1)[0]).collect();
        assert_eq!(p.slice(off, 0, 100), &whole[..]);
        assert_eq!(p.check(off, 0, &whole), None);
        // Across the period boundary and beyond one slice.
        let long: Vec<u8> = (0..3 * MAX_SLICE as u64)
            .map(|i| p.slice(off, i, 1)[0])
            .collect();
        assert_eq!(p.check(off, 0, &long), None);
        assert_eq!(p.check(off, 7, &long[7..]), None);
    }

    #[test]
    fn a_wrong_byte_is_found_where_it_is() {
        let p = Pattern::new();
        let mut data = p.slice(123, 0, 1000).to_vec();
        let want = data[777];
        data[777] ^= 0x40;
        assert_eq!(p.check(123, 0, &data), Some((777, want)));
    }

    #[test]
    fn clients_and_rounds_get_different_streams() {
        let p = Pattern::new();
        let a = p.slice(Pattern::offset(1, 0), 0, 64);
        let b = p.slice(Pattern::offset(2, 0), 0, 64);
        let c = p.slice(Pattern::offset(1, 1), 0, 64);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut offsets: Vec<usize> = (0..1000)
            .flat_map(|c| (0..10).map(move |r| Pattern::offset(c, r)))
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert!(offsets.len() > 9900, "{} distinct of 10000", offsets.len());
    }
}
