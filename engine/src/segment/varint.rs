//! LEB128 varints of u32 (7 bits a byte, least significant first, the high bit set on every byte
//! but the last), as the v2 posting lists and time blocks store small numbers: at most 5 bytes,
//! read with bounds and overflow checks.

/// Longest varint of a u32.
const MAX_VARINT_LEN: usize = 5;

/// Bytes that [`write_varint`] takes for `value`.
pub(crate) fn varint_len(value: u32) -> usize {
    (32 - value.leading_zeros() as usize).div_ceil(7).max(1)
}

/// Appends `value` as a varint.
pub(crate) fn write_varint(mut value: u32, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The varint at `bytes[at..]` and the offset after it; `None` past the end of `bytes`, and for a
/// varint of more than 5 bytes or above u32. One byte (a value below 128, most gaps of the lists
/// that are not in packed blocks) takes one branch: this is in the search's hot loop.
#[inline]
pub(crate) fn read_varint(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let first = *bytes.get(at)?;
    if first < 0x80 {
        return Some((u32::from(first), at + 1));
    }
    let mut value = u32::from(first & 0x7F);
    for i in 1..MAX_VARINT_LEN {
        let byte = *bytes.get(at + i)?;
        if i == MAX_VARINT_LEN - 1 && byte > 0x0F {
            return None;
        }
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte < 0x80 {
            return Some((value, at + i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_boundaries() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            (1 << 28) - 1,
            1 << 28,
            u32::MAX,
        ] {
            let mut bytes = Vec::new();
            write_varint(value, &mut bytes);
            assert_eq!(bytes.len(), varint_len(value), "{value}");
            assert_eq!(
                read_varint(&bytes, 0),
                Some((value, bytes.len())),
                "{value}"
            );
        }
        // A sixth byte, a fifth byte above 4 bits, and a varint cut short.
        assert_eq!(read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00], 0), None);
        assert_eq!(read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x10], 0), None);
        assert_eq!(read_varint(&[0x80], 0), None);
        assert_eq!(read_varint(&[], 0), None);
    }
}
