//! The times section of a v2 segment: every token's start time, 128 positions to a block, each
//! block its first time and the deltas of the others as a patched frame of reference: the
//! deltas in a window `base .. base + 2^bits` packed with `BitPacker4x` as their offsets from
//! `base`, the few others listed after them as exceptions (docs/formats.md, "Times (v2)"). The
//! encoder, the [`Times`] view that decodes a document's times on demand, and the full check.
//!
//! A grid tokenizer's times step by nearly the same amount (cells of 78 or 79 ms at 12.7 tokens
//! per second), except at the end of each 3 s window (87 ms) and wherever a recording was cut or
//! pieced together: a block's deltas take a bit each and a handful of exceptions, about 0.4 bytes
//! per token with the block's record, against 4 for v1's `[u32; token_count]`.

use bitpacking::{BitPacker, BitPacker4x};

use super::format::{DocEntry, TimeBlock, PACKED_BLOCK_LEN, TIME_BLOCK_LEN};
use super::varint::{read_varint, varint_len, write_varint};

/// Bytes of one packed block of `bits` bits per value (`BitPacker4x::compressed_block_size`).
fn packed_len(bits: u8) -> usize {
    PACKED_BLOCK_LEN * bits as usize / 8
}

/// Number of blocks for `token_count` tokens.
pub(crate) fn block_count(token_count: u64) -> u64 {
    token_count.div_ceil(PACKED_BLOCK_LEN as u64)
}

/// The window `base .. base + 2^bits` that stores `deltas` in the fewest bytes: `16 * bits` of
/// packed values, and a slot byte and a varint for each delta outside it (an exception). Tries
/// the widths from 0 up while they can still win, and for each every window that starts at a
/// delta (two pointers over the sorted deltas); the first of equals (narrowest, then lowest). The
/// window of the smallest and largest delta has no exceptions, so a block never takes more than
/// 512 bytes of data.
fn best_window(deltas: &[u32]) -> (u32, u8) {
    let mut sorted = deltas.to_vec();
    sorted.sort_unstable();
    // cost[..i]: what the smallest i deltas cost as exceptions.
    let mut cost = vec![0usize; sorted.len() + 1];
    for (i, &d) in sorted.iter().enumerate() {
        cost[i + 1] = cost[i] + 1 + varint_len(d);
    }
    let all = cost[sorted.len()];
    let mut best = (usize::MAX, 0u32, 0u8);
    for bits in 0..=32u8 {
        if packed_len(bits) >= best.0 {
            // The packed values alone cost as much as the best so far, and wider ones more.
            break;
        }
        let width = 1u64 << bits;
        let mut j = 0;
        for (i, &base) in sorted.iter().enumerate() {
            j = j.max(i);
            while j < sorted.len() && u64::from(sorted[j]) < u64::from(base) + width {
                j += 1;
            }
            let total = packed_len(bits) + cost[i] + (all - cost[j]);
            if total < best.0 {
                best = (total, base, bits);
            }
        }
        if sorted
            .first()
            .zip(sorted.last())
            .is_none_or(|(&lo, &hi)| u64::from(hi - lo) < width)
        {
            // Wider windows only cost more.
            break;
        }
    }
    (best.1, best.2)
}

/// Encodes the times of all documents (`times[p]` for every position, documents concatenated in
/// the order of `docs`, each non-decreasing) as the block table and the data area. A slot that
/// holds no delta (a block's first position, a document's first position, positions past the
/// last token) is packed as 0 and is no exception; so is an exception's slot.
pub(crate) fn encode(times: &[u32], docs: &[DocEntry]) -> (Vec<TimeBlock>, Vec<u8>) {
    let packer = BitPacker4x::new();
    let mut doc_starts = docs
        .iter()
        .filter(|d| d.token_len > 0)
        .map(|d| d.token_start as usize)
        .peekable();
    let mut blocks = Vec::with_capacity(times.len().div_ceil(PACKED_BLOCK_LEN));
    let mut data = Vec::new();
    for (b, chunk) in times.chunks(PACKED_BLOCK_LEN).enumerate() {
        let first = b * PACKED_BLOCK_LEN;
        // (slot, delta) of every slot that holds a delta. Non-decreasing within a document:
        // `SegmentWriter::add` checked it.
        let mut deltas = Vec::with_capacity(PACKED_BLOCK_LEN);
        for j in 1..chunk.len() {
            while doc_starts.next_if(|&s| s < first + j).is_some() {}
            if doc_starts.peek() != Some(&(first + j)) {
                deltas.push((j, chunk[j].saturating_sub(chunk[j - 1])));
            }
        }
        let (base, bits) = best_window(&deltas.iter().map(|&(_, d)| d).collect::<Vec<_>>());
        let inside = |d: u32| d >= base && u64::from(d - base) < 1u64 << bits;
        let mut packed = [0u32; PACKED_BLOCK_LEN];
        for &(j, d) in deltas.iter().filter(|&&(_, d)| inside(d)) {
            packed[j] = d - base;
        }
        // Whole 4-byte units: a block's data is at most 512 bytes and there are at most 2^25
        // blocks (positions are u32), so starts fit a u32 (2^32 units).
        let data_start = (data.len() / 4) as u32;
        let at = data.len();
        data.resize(at + packed_len(bits), 0);
        packer.compress(&packed, &mut data[at..], bits);
        let mut exceptions = 0u8;
        for &(j, d) in deltas.iter().filter(|&&(_, d)| !inside(d)) {
            data.push(j as u8);
            write_varint(d, &mut data);
            exceptions += 1;
        }
        data.resize(data.len().next_multiple_of(4), 0);
        blocks.push(TimeBlock {
            first_ms: chunk[0],
            base_delta: base,
            data_start,
            bits,
            exceptions,
            reserved: [0; 2],
        });
    }
    (blocks, data)
}

/// One block's deltas as [`PackedTimes::unpack`] decodes them.
struct Deltas {
    /// The delta of each slot: `base_delta` plus the packed value, or the exception's delta.
    /// u64, so that a damaged block cannot overflow here ([`check`] bounds the sums).
    delta: [u64; PACKED_BLOCK_LEN],
    /// Bit j set: slot j holds something (a packed value other than 0, or an exception), which
    /// a slot without a delta may not.
    holds: u128,
}

/// The v2 times section split into its block table and data area, as the reader found it
/// (lengths checked at open, contents by [`check`]).
#[derive(Clone, Copy)]
pub(crate) struct PackedTimes<'a> {
    pub blocks: &'a [TimeBlock],
    pub data: &'a [u8],
}

impl<'a> PackedTimes<'a> {
    /// Splits the section: `block_count` records, then the data area. `None` if the section is
    /// shorter than the records or misaligned (checked at open).
    pub(crate) fn new(section: &'a [u8], block_count: usize) -> Option<PackedTimes<'a>> {
        let split = block_count.checked_mul(TIME_BLOCK_LEN as usize)?;
        let blocks = match split {
            // An empty slice need not be aligned (one that is not from the mapping).
            0 => &[],
            _ => bytemuck::try_cast_slice(section.get(..split)?).ok()?,
        };
        Some(PackedTimes {
            blocks,
            data: section.get(split..)?,
        })
    }

    /// Decodes block `b`'s deltas and returns its record and where its data ends (before
    /// padding). An error if the record or its data is malformed: a width above 32, data past the
    /// section, exception slots that do not ascend below 128 or whose packed value is not 0
    /// (never after [`check`] passed).
    fn unpack(&self, b: usize, out: &mut Deltas) -> Result<(&'a TimeBlock, usize), String> {
        let block = self
            .blocks
            .get(b)
            .ok_or_else(|| format!("block {b} past the block table"))?;
        if block.bits > 32 {
            return Err(format!(
                "block {b}: {} bits per value, above 32",
                block.bits
            ));
        }
        let start = block.data_start as usize * 4;
        let mut at = start + packed_len(block.bits);
        let packed = self
            .data
            .get(start..at)
            .ok_or_else(|| format!("block {b}: packed values past the section"))?;
        let mut values = [0u32; PACKED_BLOCK_LEN];
        BitPacker4x::new().decompress(packed, &mut values, block.bits);
        out.holds = 0;
        for (j, &v) in values.iter().enumerate() {
            out.delta[j] = u64::from(block.base_delta) + u64::from(v);
            out.holds |= u128::from(v != 0) << j;
        }
        let mut previous_slot = None;
        for _ in 0..block.exceptions {
            let slot = *self
                .data
                .get(at)
                .ok_or_else(|| format!("block {b}: exceptions past the section"))?;
            let (delta, next) = read_varint(self.data, at + 1).ok_or_else(|| {
                format!("block {b}: an exception's delta runs past the section or above u32")
            })?;
            let j = usize::from(slot);
            if previous_slot.is_some_and(|p| p >= slot) || j >= PACKED_BLOCK_LEN {
                return Err(format!(
                    "block {b}: exception slots do not ascend below 128"
                ));
            }
            if out.holds >> j & 1 != 0 {
                return Err(format!("block {b}: exception slot {j} has a packed value"));
            }
            out.delta[j] = u64::from(delta);
            out.holds |= 1 << j;
            previous_slot = Some(slot);
            at = next;
        }
        Ok((block, at))
    }
}

/// The start times in ms of one document's tokens. A v1 segment lends its array; a v2 segment
/// decodes the blocks a lookup needs (one block for [`Times::get`]), so holding a `Times` costs
/// nothing.
#[derive(Clone, Copy)]
pub struct Times<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    Plain(&'a [u32]),
    Packed {
        table: PackedTimes<'a>,
        /// Segment position of the document's first token.
        start: usize,
        len: usize,
        /// The time of the first token (the doc table's `first_time_ms`).
        first_ms: u32,
    },
}

impl std::fmt::Debug for Times<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Times").field("len", &self.len()).finish()
    }
}

impl<'a> Times<'a> {
    /// A v1 document's times.
    pub(crate) fn plain(times: &'a [u32]) -> Times<'a> {
        Times(Repr::Plain(times))
    }

    /// A v2 document's times: `len` tokens from segment position `start`, the first at
    /// `first_ms`.
    pub(crate) fn packed(
        table: PackedTimes<'a>,
        start: usize,
        len: usize,
        first_ms: u32,
    ) -> Times<'a> {
        Times(Repr::Packed {
            table,
            start,
            len,
            first_ms,
        })
    }

    /// Number of tokens (one time each).
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Plain(times) => times.len(),
            Repr::Packed { len, .. } => len,
        }
    }

    /// Whether the document has no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The start time in ms of token `i` of the document, `None` past its last token.
    pub fn get(&self, i: usize) -> Option<u32> {
        match self.0 {
            Repr::Plain(times) => times.get(i).copied(),
            Repr::Packed { .. } => {
                let mut time = None;
                self.for_each_in(i..i.checked_add(1)?, |t| time = Some(t));
                time
            }
        }
    }

    /// The start times of tokens `range` of the document, `None` if the range is not within
    /// it (as `slice::get`).
    pub fn get_range(&self, range: std::ops::Range<usize>) -> Option<Vec<u32>> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        match self.0 {
            Repr::Plain(times) => times.get(range).map(<[u32]>::to_vec),
            Repr::Packed { .. } => {
                let mut out = Vec::with_capacity(range.len());
                self.for_each_in(range, |t| out.push(t));
                Some(out)
            }
        }
    }

    /// All the document's times.
    pub fn to_vec(&self) -> Vec<u32> {
        self.get_range(0..self.len()).unwrap_or_default()
    }

    /// Calls `f` with the times of tokens `range` (within the document) of a packed document.
    /// A token's time is the document's first time at its first token, the block's first time
    /// at a block's first position, and the previous time plus the block's delta otherwise; so
    /// decoding starts at the later of the two anchors before `range.start`. The segment was
    /// checked ([`check`]), so nothing fails and nothing overflows; a damaged block would end
    /// the decoding early rather than panic.
    fn for_each_in(&self, range: std::ops::Range<usize>, mut f: impl FnMut(u32)) {
        let Repr::Packed {
            table,
            start,
            len,
            first_ms,
        } = self.0
        else {
            return;
        };
        if range.start >= range.end || range.end > len {
            return;
        }
        let (from, to) = (start + range.start, start + range.end);
        let mut p = start.max(from / PACKED_BLOCK_LEN * PACKED_BLOCK_LEN);
        let mut time = first_ms;
        let mut deltas = Deltas {
            delta: [0; PACKED_BLOCK_LEN],
            holds: 0,
        };
        while p < to {
            let b = p / PACKED_BLOCK_LEN;
            let Ok((block, _)) = table.unpack(b, &mut deltas) else {
                return;
            };
            let block_start = b * PACKED_BLOCK_LEN;
            let block_end = to.min(block_start + PACKED_BLOCK_LEN);
            while p < block_end {
                time = if p == start {
                    first_ms
                } else if p == block_start {
                    block.first_ms
                } else {
                    // Checked: no sum overflows.
                    time.wrapping_add(deltas.delta[p - block_start] as u32)
                };
                if p >= from {
                    f(time);
                }
                p += 1;
            }
        }
    }
}

/// The full check of a v2 times section against the (already checked) doc table: every block
/// unpacks (widths at most 32, exceptions in order and in range), the blocks' data follow each
/// other with zero padding and cover the data area exactly, slots that hold no delta hold
/// nothing, no time overflows u32, times do not decrease within a document (at a block's first
/// position the stored time is not below the previous one), a block that starts a document
/// starts at its `first_time_ms`, and empty documents have `first_time_ms` 0.
pub(crate) fn check(section: &[u8], token_count: u64, docs: &[DocEntry]) -> Result<(), String> {
    let blocks = block_count(token_count) as usize;
    let table = PackedTimes::new(section, blocks)
        .ok_or_else(|| format!("{} bytes, too short for {blocks} blocks", section.len()))?;
    if let Some((ord, _)) = docs
        .iter()
        .enumerate()
        .find(|(_, d)| d.token_len == 0 && d.first_time_ms != 0)
    {
        return Err(format!(
            "document {ord} is empty but its first time is not 0"
        ));
    }

    let mut doc_starts = docs
        .iter()
        .filter(|d| d.token_len > 0)
        .map(|d| (d.token_start as usize, d.first_time_ms))
        .peekable();
    let mut deltas = Deltas {
        delta: [0; PACKED_BLOCK_LEN],
        holds: 0,
    };
    let mut time = 0u64;
    let mut next_start = 0usize;
    for b in 0..blocks {
        let (block, end) = table.unpack(b, &mut deltas)?;
        if block.data_start as usize * 4 != next_start {
            return Err(format!(
                "block {b}: data starts at unit {}, expected {}",
                block.data_start,
                next_start / 4
            ));
        }
        if block.reserved != [0; 2] {
            return Err(format!("block {b}: reserved bytes are not zero"));
        }
        next_start = end.next_multiple_of(4);
        let padding = table
            .data
            .get(end..next_start)
            .ok_or_else(|| format!("block {b}: padding past the section"))?;
        if padding.iter().any(|&x| x != 0) {
            return Err(format!("block {b}: padding is not zero"));
        }
        let block_start = b * PACKED_BLOCK_LEN;
        for j in 0..PACKED_BLOCK_LEN {
            let p = block_start + j;
            while doc_starts.next_if(|&(s, _)| s < p).is_some() {}
            let doc_first = doc_starts.peek().filter(|&&(s, _)| s == p).map(|&(_, t)| t);
            let holds_delta = j > 0 && doc_first.is_none() && (p as u64) < token_count;
            if !holds_delta && deltas.holds >> j & 1 != 0 {
                return Err(format!(
                    "block {b}: slot {j} (position {p}) holds no delta but is not empty"
                ));
            }
            if p as u64 >= token_count {
                continue;
            }
            time = match (doc_first, j) {
                (Some(first), 0) if first != block.first_ms => {
                    return Err(format!(
                        "block {b} starts document at position {p} at {} ms, the doc table \
                         says {first} ms",
                        block.first_ms
                    ))
                }
                (Some(first), _) => u64::from(first),
                (None, 0) if u64::from(block.first_ms) < time => {
                    return Err(format!(
                        "times decrease at position {p} ({} ms after {time} ms)",
                        block.first_ms
                    ))
                }
                (None, 0) => u64::from(block.first_ms),
                (None, _) => time + deltas.delta[j],
            };
            if time > u64::from(u32::MAX) {
                return Err(format!("the time of position {p} overflows u32"));
            }
        }
    }
    if next_start != table.data.len() {
        return Err(format!(
            "the blocks use {next_start} bytes of data, the section has {} after the block table",
            table.data.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Doc table entries for documents of `lens` tokens (times from `times`).
    fn doc_table(lens: &[u32], times: &[u32]) -> Vec<DocEntry> {
        let mut start = 0;
        lens.iter()
            .map(|&len| {
                let entry = DocEntry {
                    name_offset: 0,
                    token_start: start,
                    token_len: len,
                    name_len: 1,
                    doc_id: 0,
                    duration_ms: 0,
                    first_time_ms: if len > 0 { times[start as usize] } else { 0 },
                };
                start += len;
                entry
            })
            .collect()
    }

    fn section(blocks: &[TimeBlock], data: &[u8]) -> Vec<u8> {
        let mut bytes = bytemuck::cast_slice::<TimeBlock, u8>(blocks).to_vec();
        bytes.extend_from_slice(data);
        bytes
    }

    /// Documents of 0 to 400 tokens (so some start at a block's first position and some span
    /// three blocks), each non-decreasing from any start with steps up to `max_step` (up to
    /// 2^32 - 1, with the sums kept in u32).
    fn arb_times() -> impl Strategy<Value = (Vec<u32>, Vec<u32>)> {
        let step = prop_oneof![0u32..2, 77u32..80, 0u32..5000, any::<u32>()];
        proptest::collection::vec(
            (
                0usize..400,
                any::<u32>(),
                proptest::collection::vec(step, 400),
            ),
            0..6,
        )
        .prop_map(|docs| {
            let mut lens = Vec::new();
            let mut times = Vec::new();
            for (len, first, steps) in docs {
                lens.push(len as u32);
                let mut t = first;
                for &step in &steps[..len] {
                    times.push(t);
                    t = t.saturating_add(step);
                }
            }
            (lens, times)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against the times themselves: every document whole, one by one and in pieces.
        #[test]
        fn times_round_trip((lens, times) in arb_times()) {
            let docs = doc_table(&lens, &times);
            let (blocks, data) = encode(&times, &docs);
            prop_assert_eq!(blocks.len() as u64, block_count(times.len() as u64));
            let bytes = section(&blocks, &data);
            prop_assert_eq!(check(&bytes, times.len() as u64, &docs), Ok(()));
            let table = PackedTimes::new(&bytes, blocks.len()).expect("fits");
            for d in &docs {
                let start = d.token_start as usize;
                let want = &times[start..start + d.token_len as usize];
                let got = Times::packed(table, start, want.len(), d.first_time_ms);
                prop_assert_eq!(got.to_vec(), want);
                for (i, &t) in want.iter().enumerate().step_by(7) {
                    prop_assert_eq!(got.get(i), Some(t));
                    prop_assert_eq!(got.get_range(i..want.len()), Some(want[i..].to_vec()));
                }
                prop_assert_eq!(got.get(want.len()), None);
            }
        }
    }

    #[test]
    fn grid_times_take_a_bit_per_token() {
        // 1,000 tokens at 12.7 a second: steps of 78 or 79 ms.
        let times: Vec<u32> = (0..1000u64).map(|i| (i * 10_000 / 127) as u32).collect();
        let docs = doc_table(&[1000], &times);
        let (blocks, data) = encode(&times, &docs);
        assert_eq!(blocks.len(), 8);
        assert!(blocks
            .iter()
            .all(|b| (b.bits, b.exceptions, b.base_delta) == (1, 0, 78)));
        assert_eq!(data.len(), 8 * 16);
        // In windows of 3 s (38 cells, then 87 ms to the next window), and with a step of 56
        // ms: those are exceptions of a 1-bit block, 2 bytes each: the slot, then the delta as
        // a varint.
        let mut times: Vec<u32> = (0..256u32)
            .map(|i| i / 38 * 3000 + (u64::from(i % 38) * 10_000 / 127) as u32)
            .collect();
        times[200..].iter_mut().for_each(|t| *t -= 22);
        let docs = doc_table(&[256], &times);
        let (blocks, data) = encode(&times, &docs);
        assert_eq!(
            blocks
                .iter()
                .map(|b| (b.bits, b.exceptions, b.base_delta))
                .collect::<Vec<_>>(),
            [(1, 3, 78), (1, 4, 78)]
        );
        assert_eq!(&data[16..22], [38, 87, 76, 87, 114, 87]);
        assert_eq!(&data[24 + 16..24 + 24], [24, 87, 62, 87, 72, 57, 100, 87]);
        assert_eq!(data.len(), 24 + 24);
        assert_eq!(check(&section(&blocks, &data), 256, &docs), Ok(()));
    }

    #[test]
    fn malformed_sections_are_errors() {
        let mut times: Vec<u32> = (0..200).map(|i| i * 80 + i % 3).collect();
        times[50..150].iter_mut().for_each(|t| *t += 1000);
        let docs = doc_table(&[150, 0, 50], &times);
        let (blocks, data) = encode(&times, &docs);
        assert_eq!(blocks[0].exceptions, 1, "the step of 1080 ms");
        let bytes = section(&blocks, &data);
        assert_eq!(check(&bytes, 200, &docs), Ok(()));
        // Shorter than the block table, a data area too short or too long, more tokens than
        // the blocks cover.
        assert!(check(&bytes[..16], 200, &docs).is_err());
        assert!(check(&bytes[..bytes.len() - 4], 200, &docs).is_err());
        let mut longer = bytes.clone();
        longer.extend([0; 4]);
        assert!(check(&longer, 200, &docs).is_err());
        assert!(check(&bytes, 300, &docs).is_err());
        assert!(PackedTimes::new(&bytes[..31], 2).is_none());
        // Exceptions: one too many or too few, a slot past the block.
        for edit in [
            |b: &mut TimeBlock| b.exceptions += 1,
            |b: &mut TimeBlock| b.exceptions -= 1,
            |b: &mut TimeBlock| b.reserved[1] = 1,
        ] {
            let mut edited = blocks.clone();
            edit(&mut edited[0]);
            assert!(check(&section(&edited, &data), 200, &docs).is_err());
        }
        let mut slot = data.clone();
        slot[packed_len(blocks[0].bits)] = 128;
        assert!(check(&section(&blocks, &slot), 200, &docs).is_err());
        // A damaged table decodes nothing rather than panicking.
        let mut wide = blocks.clone();
        wide[1].bits = 40;
        let bytes = section(&wide, &data);
        let table = PackedTimes::new(&bytes, 2).expect("fits");
        assert_eq!(Times::packed(table, 0, 150, 0).get(140), None);
    }
}
