//! The posting lists of a v2 segment (docs/formats.md, "Postings (v2)"): the positions of a
//! q-gram that occurs two or more times, ascending, as the first position (a varint), then the
//! gaps minus one in `BitPacker4x` blocks of 128 (a width byte and the packed block each), then
//! the remaining fewer than 128 gaps minus one as varints; each list zero-padded to 8 bytes. The
//! encoder, the decoder the search loop runs (a block at a time into a stack buffer) and the full
//! check.
//!
//! Positions of a q-gram in a segment of real tokens are thousands apart at most for all but the
//! rarest q-grams, so a gap takes one or two bytes instead of v1's four.

use bitpacking::{BitPacker, BitPacker4x};

use super::format::{LIST_ALIGN, PACKED_BLOCK_LEN};
use super::varint::{read_varint, write_varint};

/// Appends the encoding of strictly ascending `positions` (two or more) to `out`, which ends at a
/// multiple of [`LIST_ALIGN`] before and after.
pub(crate) fn encode(positions: &[u32], out: &mut Vec<u8>) {
    debug_assert!(positions.len() >= 2);
    debug_assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let packer = BitPacker4x::new();
    let (&first, rest) = positions.split_first().unwrap_or((&0, &[]));
    write_varint(first, out);
    let mut previous = first;
    let mut blocks = rest.chunks_exact(PACKED_BLOCK_LEN);
    for block in &mut blocks {
        let bits = packer.num_bits_strictly_sorted(Some(previous), block);
        out.push(bits);
        let at = out.len();
        out.resize(at + BitPacker4x::compressed_block_size(bits), 0);
        packer.compress_strictly_sorted(Some(previous), block, &mut out[at..], bits);
        previous = block[PACKED_BLOCK_LEN - 1];
    }
    for &position in blocks.remainder() {
        write_varint(position - previous - 1, out);
        previous = position;
    }
    out.resize(out.len().next_multiple_of(LIST_ALIGN as usize), 0);
}

/// Why a list does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The list runs past the section.
    PastEnd,
    /// A packed block's width is above 32.
    Width(u8),
    /// A varint has more than 5 bytes or is above u32.
    Varint,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::PastEnd => write!(f, "the list runs past the section"),
            Malformed::Width(bits) => write!(f, "a block of {bits} bits per gap, above 32"),
            Malformed::Varint => write!(f, "a varint above 2^32 - 1"),
        }
    }
}

/// The varint at `bytes[at..]`, telling a varint cut by the end of the section from one too long.
#[inline]
fn varint(bytes: &[u8], at: usize) -> Result<(u32, usize), Malformed> {
    read_varint(bytes, at).ok_or(if bytes.len() < at + 5 {
        Malformed::PastEnd
    } else {
        Malformed::Varint
    })
}

/// Calls `f` with each of the `cardinality` (>= 2) positions of the list at the start of `bytes`,
/// in order, and returns the list's length without padding. Fails on a list that runs past
/// `bytes`, a width above 32 or a varint above u32; it does not check the order (a damaged list
/// may wrap around), which [`check`] does. The search calls it for every q-gram of a query: a
/// packed block is decoded into a stack buffer, a gap in the tail takes a branch or two.
#[inline]
pub(crate) fn for_each(
    bytes: &[u8],
    cardinality: u32,
    mut f: impl FnMut(u32),
) -> Result<usize, Malformed> {
    let (first, mut at) = varint(bytes, 0)?;
    f(first);
    let gaps = cardinality.saturating_sub(1) as usize;
    let mut previous = first;
    if gaps >= PACKED_BLOCK_LEN {
        let packer = BitPacker4x::new();
        let mut block = [0u32; PACKED_BLOCK_LEN];
        for _ in 0..gaps / PACKED_BLOCK_LEN {
            let bits = *bytes.get(at).ok_or(Malformed::PastEnd)?;
            if bits > 32 {
                return Err(Malformed::Width(bits));
            }
            let len = BitPacker4x::compressed_block_size(bits);
            let packed = bytes.get(at + 1..at + 1 + len).ok_or(Malformed::PastEnd)?;
            packer.decompress_strictly_sorted(Some(previous), packed, &mut block, bits);
            block.iter().for_each(|&p| f(p));
            previous = block[PACKED_BLOCK_LEN - 1];
            at += 1 + len;
        }
    }
    for _ in 0..gaps % PACKED_BLOCK_LEN {
        let (gap, next) = varint(bytes, at)?;
        previous = previous.wrapping_add(gap).wrapping_add(1);
        f(previous);
        at = next;
    }
    Ok(at)
}

/// The full check of the list at the start of `bytes` with `cardinality` positions: it decodes,
/// its positions ascend strictly (without wrapping) and are below `token_count`, and the padding
/// to the next multiple of [`LIST_ALIGN`] is zero and within `bytes`. Returns the padded length.
pub(crate) fn check(bytes: &[u8], cardinality: u32, token_count: u64) -> Result<usize, String> {
    let mut previous: Option<u32> = None;
    let mut bad: Option<String> = None;
    let end = for_each(bytes, cardinality, |p| {
        if bad.is_none() {
            if previous.is_some_and(|q| p <= q) {
                bad = Some(format!(
                    "positions are not strictly ascending ({p} after {})",
                    previous.unwrap_or_default()
                ));
            } else if u64::from(p) >= token_count {
                bad = Some(format!(
                    "position {p} is not below the token count {token_count}"
                ));
            }
        }
        previous = Some(p);
    })
    .map_err(|e| e.to_string())?;
    if let Some(reason) = bad {
        return Err(reason);
    }
    let padded = end.next_multiple_of(LIST_ALIGN as usize);
    let padding = bytes
        .get(end..padded)
        .ok_or_else(|| "padding past the section".to_string())?;
    if padding.iter().any(|&b| b != 0) {
        return Err("padding after the list is not zero".into());
    }
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(bytes: &[u8], cardinality: u32) -> Result<Vec<u32>, Malformed> {
        let mut out = Vec::new();
        for_each(bytes, cardinality, |p| out.push(p))?;
        Ok(out)
    }

    #[test]
    fn a_block_list_has_the_documented_bytes() {
        // First 3, then 128 gaps of 2 (stored as 1: one bit each), then 2 gaps of 300.
        let mut positions = vec![3u32];
        positions.extend((1..=128).map(|i| 3 + 2 * i));
        positions.extend([259 + 300, 259 + 600]);
        let mut bytes = Vec::new();
        encode(&positions, &mut bytes);
        let mut expected = vec![3u8, 1];
        expected.extend([0xFF; 16]);
        expected.extend([0xAB, 0x02, 0xAB, 0x02]);
        expected.resize(24, 0);
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes, 131), Ok(positions.clone()));
        assert_eq!(check(&bytes, 131, 1000), Ok(24));
        assert!(
            check(&bytes, 131, 859).is_err(),
            "last position at the token count"
        );
        // A width above 32, a cut block, a non-zero padding byte, and a cardinality that reads
        // the padding as gaps and then runs past the end.
        let mut wide = bytes.clone();
        wide[1] = 33;
        assert!(check(&wide, 131, 1000).is_err());
        assert!(check(&bytes[..10], 131, 1000).is_err());
        let mut padded = bytes.clone();
        padded[23] = 1;
        assert!(check(&padded, 131, 1000).is_err());
        assert!(check(&bytes, 140, 1000).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against the list itself: every length around the block size, sparse and dense.
        #[test]
        fn lists_round_trip(
            set in proptest::collection::btree_set(
                prop_oneof![0u32..600, 0u32..100_000, any::<u32>()], 2..700)
        ) {
            let positions: Vec<u32> = set.into_iter().collect();
            let mut bytes = vec![0u8; 8];
            encode(&positions, &mut bytes);
            prop_assert_eq!(bytes.len() % 8, 0);
            let n = positions.len() as u32;
            prop_assert_eq!(decode(&bytes[8..], n), Ok(positions.clone()));
            prop_assert_eq!(check(&bytes[8..], n, 1 << 32), Ok(bytes.len() - 8));
            // The bound that keeps list offsets in a u32 (LIST_ALIGN): at most n units.
            prop_assert!((bytes.len() - 8) as u64 <= LIST_ALIGN * u64::from(n));
        }
    }
}
