//! A single-object batch signature (`PrioBatchSignature` with `batch_header` and
//! `packets` inline) written and read as a stream: the packet file is copied from a
//! reader instead of being held in memory, and read up to where its packets begin, so a
//! large validation batch costs no memory to sign, write or open.

use super::header::read_header;
use super::varint::{push_long, read_long};
use super::{BatchSignature, Record, RecordWriter, WireError};
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

/// A signature file read up to its inline packets: every other field, and where the
/// packet file lies in the object.
#[derive(Debug, Clone, PartialEq)]
pub struct SignaturePrefix {
    /// The record without its packets (`packets` is None).
    pub signature: BatchSignature,
    /// The inline packet file's offset and length in the object, if it has one.
    pub packets: Option<(u64, u64)>,
    /// The file's sync marker, which must follow the inline packets and end the file
    /// ([`SyncTrailer`] checks it as they are streamed).
    pub marker: [u8; 16],
}

/// Reads the inline packets (`len` bytes from where `inner` stands), then checks that
/// the file's sync marker and nothing else follows: a file cut or extended after its
/// packets fails like any malformed container.
pub struct SyncTrailer<R> {
    inner: R,
    left: u64,
    marker: [u8; 16],
    checked: bool,
}

impl<R: Read> SyncTrailer<R> {
    pub fn new(inner: R, len: u64, marker: [u8; 16]) -> Self {
        SyncTrailer {
            inner,
            left: len,
            marker,
            checked: false,
        }
    }
}

impl<R: Read> Read for SyncTrailer<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left > 0 {
            let want = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 && want > 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.left -= n as u64;
            return Ok(n);
        }
        if !self.checked {
            self.checked = true;
            check_end(&mut self.inner, &self.marker)?;
        }
        Ok(0)
    }
}

/// The sync marker ends the record's block, and the file ends there.
fn check_end<R: Read>(input: &mut R, marker: &[u8; 16]) -> io::Result<()> {
    let mut trailer = [0u8; 16];
    input.read_exact(&mut trailer)?;
    let mut more = [0u8; 1];
    if &trailer != marker || input.read(&mut more)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "signature file does not end with its sync marker",
        ));
    }
    Ok(())
}

/// Longest signature (DER ECDSA is ~72 bytes) and key identifier read.
const MAX_FIELD: u64 = 4096;

/// Reads a signature file written in our schema up to its inline packets (the last
/// field), refusing a batch header over `max_header` bytes. `Ok(None)` if the file is not
/// in our writer schema (an older writer's field order, say): read it whole instead, as
/// any container file.
pub fn read_signature_prefix<R: Read>(
    input: R,
    max_header: u64,
) -> Result<Option<SignaturePrefix>, WireError> {
    let mut input = Counting {
        inner: input,
        read: 0,
    };
    let header = read_header(&mut input)?;
    let ours = serde_json::to_value(BatchSignature::schema())
        .map_err(|e| WireError::Malformed(format!("our signature schema: {e}")))?;
    if header.schema != ours {
        return Ok(None);
    }
    // A file cut short or framed wrongly is malformed; a failed read is an I/O error.
    let io_error = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => WireError::Malformed("truncated signature file".into()),
        io::ErrorKind::InvalidData => WireError::Malformed(e.to_string()),
        _ => WireError::Io(e),
    };
    let count = read_long(&mut input).map_err(io_error)?;
    if count != 1 {
        return Err(WireError::RecordCount {
            record: BatchSignature::NAME,
            found: usize::try_from(count).unwrap_or(0),
        });
    }
    let block_len = read_long(&mut input).map_err(io_error)?;
    let block_end = input.read + u64::try_from(block_len).unwrap_or(0);
    let bytes = |input: &mut Counting<R>, what: &str, max: u64| {
        let len = u64::try_from(read_long(input).map_err(io_error)?)
            .map_err(|_| WireError::Malformed(format!("{what}: negative length")))?;
        if len > max || input.read + len > block_end {
            return Err(WireError::Malformed(format!(
                "{what}: {len} bytes, over its limit or its block"
            )));
        }
        let mut out = vec![0u8; len as usize];
        input.read_exact(&mut out).map_err(io_error)?;
        Ok(out)
    };
    let batch_header_signature = bytes(&mut input, "batch_header_signature", MAX_FIELD)?;
    let key_identifier = String::from_utf8(bytes(&mut input, "key_identifier", MAX_FIELD)?)
        .map_err(|_| WireError::Malformed("key_identifier is not UTF-8".into()))?;
    let batch_header = match read_long(&mut input).map_err(io_error)? {
        0 => None,
        1 => Some(bytes(&mut input, "batch_header", max_header)?),
        other => {
            return Err(WireError::Malformed(format!(
                "batch_header: union branch {other}"
            )))
        }
    };
    let packets = match read_long(&mut input).map_err(io_error)? {
        0 => None,
        1 => {
            let len = u64::try_from(read_long(&mut input).map_err(io_error)?)
                .map_err(|_| WireError::Malformed("packets: negative length".into()))?;
            if input.read + len != block_end {
                return Err(WireError::Malformed(
                    "packets: length does not end the record's block".into(),
                ));
            }
            Some((input.read, len))
        }
        other => {
            return Err(WireError::Malformed(format!(
                "packets: union branch {other}"
            )))
        }
    };
    if packets.is_none() {
        if input.read != block_end {
            return Err(WireError::Malformed(
                "the record does not end its block".into(),
            ));
        }
        check_end(&mut input, &header.marker).map_err(io_error)?;
    }
    Ok(Some(SignaturePrefix {
        signature: BatchSignature {
            batch_header_signature,
            key_identifier,
            batch_header,
            packets: None,
        },
        packets,
        marker: header.marker,
    }))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
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
    fn the_prefix_reader_finds_the_fields_and_where_the_packets_lie() {
        let packet_file = encode_all(
            &(0..500)
                .map(|i| ValidityPacket {
                    uuid: uuid::Uuid::new_v4(),
                    f_r: i,
                    g_r: i,
                    h_r: i,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let bytes = write_inline_signature(
            Vec::new(),
            b"sig",
            "key-1",
            b"header",
            &packet_file[..],
            packet_file.len() as u64,
        )
        .unwrap();
        let prefix = read_signature_prefix(&bytes[..], 1 << 20).unwrap().unwrap();
        assert_eq!(
            prefix.signature,
            BatchSignature {
                batch_header_signature: b"sig".to_vec(),
                key_identifier: "key-1".into(),
                batch_header: Some(b"header".to_vec()),
                packets: None,
            }
        );
        let (offset, len) = prefix.packets.unwrap();
        assert_eq!(
            &bytes[offset as usize..(offset + len) as usize],
            &packet_file[..]
        );

        // Three-object form: no inline fields.
        let plain = BatchSignature {
            batch_header_signature: b"sig".to_vec(),
            key_identifier: "k".into(),
            batch_header: None,
            packets: None,
        };
        let file = crate::wire::encode_single(&plain).unwrap();
        let prefix = read_signature_prefix(&file[..], 1 << 20).unwrap().unwrap();
        assert_eq!((prefix.signature, prefix.packets), (plain, None));
        // ... cut short, or with a byte more: errors.
        assert!(read_signature_prefix(&file[..file.len() - 1], 1 << 20).is_err());
        let mut longer = file.clone();
        longer.push(0);
        assert!(read_signature_prefix(&longer[..], 1 << 20).is_err());

        // The inline packets stream, then the trailer is checked: whole, cut, extended.
        let read = |bytes: &[u8]| {
            let mut r = &bytes[offset as usize..];
            let mut out = Vec::new();
            SyncTrailer::new(&mut r, len, prefix_marker(bytes))
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read(&bytes).unwrap(), packet_file);
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read(&longer).is_err());

        // Another record's file is not ours to read so: None, for the whole-file reader.
        assert!(read_signature_prefix(&packet_file[..], 1 << 20)
            .unwrap()
            .is_none());
        // A header over the cap, or a file cut before its packets: errors.
        assert!(read_signature_prefix(&bytes[..], 3).is_err());
        let cut = &bytes[..(offset as usize) - 2];
        assert!(read_signature_prefix(cut, 1 << 20).is_err());
    }

    fn prefix_marker(bytes: &[u8]) -> [u8; 16] {
        read_signature_prefix(bytes, 1 << 20)
            .unwrap()
            .unwrap()
            .marker
    }

    #[test]
    fn a_short_packet_source_is_an_error() {
        let e = write_inline_signature(Vec::new(), b"s", "k", b"h", &b"abc"[..], 10).unwrap_err();
        assert!(e.to_string().contains("3 of 10"), "{e}");
    }
}
