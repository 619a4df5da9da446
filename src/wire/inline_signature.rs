//! A single-object batch signature (`PrioBatchSignature` with `batch_header` and
//! `packets` inline) written as a stream: the packet file is copied from a reader instead
//! of being held in memory, so a large validation batch costs no memory to sign and write.

use super::varint::push_long;
use super::{BatchSignature, RecordWriter, WireError};
use std::io::{self, Read, Write};

/// Union branch of `bytes` in `["null", "bytes"]`.
const BYTES_BRANCH: i64 = 1;

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Writes a container file holding one `PrioBatchSignature` whose `packets` are the
/// `packets_len` bytes read from `packets`. Reads back like any other container file.
pub fn write_inline_signature<W: Write, R: Read>(
    mut out: W,
    signature: &[u8],
    key_identifier: &str,
    header: &[u8],
    mut packets: R,
    packets_len: u64,
) -> Result<W, WireError> {
    let len = i64::try_from(packets_len)
        .map_err(|_| WireError::Malformed("packet file too large".into()))?;
    // An empty container gives the file header (magic, schema, codec) and its sync marker.
    let file_header = RecordWriter::<BatchSignature, _>::new(Vec::new())?.finish()?;
    let sync = file_header
        .get(file_header.len().saturating_sub(16)..)
        .filter(|s| s.len() == 16)
        .ok_or_else(|| WireError::Malformed("container header without sync marker".into()))?
        .to_vec();

    // The record up to the packet bytes, fields in schema order.
    let mut prefix = Vec::with_capacity(signature.len() + header.len() + 64);
    push_bytes(&mut prefix, signature);
    push_bytes(&mut prefix, key_identifier.as_bytes());
    push_long(&mut prefix, BYTES_BRANCH);
    push_bytes(&mut prefix, header);
    push_long(&mut prefix, BYTES_BRANCH);
    push_long(&mut prefix, len);

    let mut block = Vec::with_capacity(24);
    push_long(&mut block, 1); // one record
    let record_len = i64::try_from(prefix.len() as u64 + packets_len)
        .map_err(|_| WireError::Malformed("packet file too large".into()))?;
    push_long(&mut block, record_len);

    out.write_all(&file_header)?;
    out.write_all(&block)?;
    out.write_all(&prefix)?;
    let copied = io::copy(&mut packets.by_ref().take(packets_len), &mut out)?;
    if copied != packets_len {
        return Err(WireError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("packet file ended after {copied} of {packets_len} bytes"),
        )));
    }
    out.write_all(&sync)?;
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_single, encode_all, ValidityPacket};

    #[test]
    fn reads_back_as_the_same_record() {
        let packets: Vec<ValidityPacket> = (0..1000)
            .map(|i| ValidityPacket {
                uuid: uuid::Uuid::new_v4(),
                f_r: i,
                g_r: 2 * i,
                h_r: 3 * i,
            })
            .collect();
        let packet_file = encode_all(&packets).unwrap();
        let bytes = write_inline_signature(
            Vec::new(),
            &[0x30, 0x45, 1, 2, 3],
            "key-1",
            b"header bytes",
            &packet_file[..],
            packet_file.len() as u64,
        )
        .unwrap();
        let sig: BatchSignature = decode_single(&bytes).unwrap();
        assert_eq!(
            sig,
            BatchSignature {
                batch_header_signature: vec![0x30, 0x45, 1, 2, 3],
                key_identifier: "key-1".into(),
                batch_header: Some(b"header bytes".to_vec()),
                packets: Some(packet_file.clone()),
            }
        );
    }

    #[test]
    fn a_short_packet_source_is_an_error() {
        let e = write_inline_signature(Vec::new(), b"s", "k", b"h", &b"abc"[..], 10).unwrap_err();
        assert!(e.to_string().contains("3 of 10"), "{e}");
    }
}
