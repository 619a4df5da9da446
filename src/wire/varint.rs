//! Avro's zigzag variable-length longs, as used in container framing.

use std::io::{self, Read};

/// Longest encoding of a 64-bit value (7 bits per byte).
const MAX_BYTES: u32 = 10;

/// Reads one long; `Ok(None)` if the input ends before its first byte (a clean end).
pub(crate) fn read_long_or_end<T: Read>(input: &mut T) -> io::Result<Option<i64>> {
    let mut raw = 0u64;
    for i in 0..MAX_BYTES {
        let mut byte = [0u8; 1];
        if input.read(&mut byte)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        raw |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(unzigzag(raw)));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint too long",
    ))
}

/// Reads one long; the input ending first is `UnexpectedEof`.
pub(crate) fn read_long<T: Read>(input: &mut T) -> io::Result<i64> {
    read_long_or_end(input)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// Takes one long off the front of `data`; `None` if truncated or too long.
pub(crate) fn take_long(data: &mut &[u8]) -> Option<i64> {
    let mut raw = 0u64;
    for i in 0..MAX_BYTES {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(unzigzag(raw));
        }
    }
    None
}

/// Appends the encoding of `value`.
pub(crate) fn push_long(out: &mut Vec<u8>, value: i64) {
    // Zigzag: the sign moves to bit 0 so small magnitudes stay short.
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw > 0x7f {
        out.push((raw & 0x7f) as u8 | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn unzigzag(raw: u64) -> i64 {
    (raw >> 1) as i64 ^ -((raw & 1) as i64)
}
