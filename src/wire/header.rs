//! Our own parse of an object container file's header (magic, metadata, sync marker).
//!
//! apache-avro panics on some malformed writer schemas (an invalid name is an `unwrap`),
//! so the header is read and checked here before apache-avro sees any of it.

use super::{varint, WireError};
use std::io::{self, Read};

const MAGIC: &[u8; 4] = b"Obj\x01";
/// Real headers are a few hundred bytes; the cap bounds memory on hostile input.
const MAX_HEADER_BYTES: usize = 1 << 20;

pub(crate) struct Header {
    /// The header's bytes exactly as read, to replay to apache-avro.
    pub(crate) raw: Vec<u8>,
    /// The writer schema (`avro.schema`), as JSON.
    pub(crate) schema: serde_json::Value,
    pub(crate) marker: [u8; 16],
    /// Metadata entries outside Avro's reserved `avro.` namespace, in file order. Avro
    /// readers ignore them, and a signature over the file covers them.
    pub(crate) user_metadata: super::UserMetadata,
}

/// Reads the header off the front of `input`, leaving it at the first data block.
pub(crate) fn read_header<T: Read>(input: &mut T) -> Result<Header, WireError> {
    let mut recorder = Recorder {
        input,
        raw: Vec::with_capacity(1024),
    };
    let (schema, marker, user_metadata) = parse(&mut recorder).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => WireError::NotAvro("truncated header".into()),
        io::ErrorKind::InvalidData => WireError::NotAvro(e.to_string()),
        _ => WireError::Io(e),
    })?;
    let schema = serde_json::from_slice(&schema)
        .map_err(|e| WireError::NotAvro(format!("writer schema is not JSON: {e}")))?;
    Ok(Header {
        raw: recorder.raw,
        schema,
        marker,
        user_metadata,
    })
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// The schema bytes, the sync marker and the user metadata; only codec null is accepted.
type Parsed = (Vec<u8>, [u8; 16], super::UserMetadata);

fn parse<T: Read>(input: &mut Recorder<'_, T>) -> io::Result<Parsed> {
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("no Avro magic"));
    }
    let mut schema = None;
    let mut user = Vec::new();
    // The metadata map: blocks of entries, ended by a zero count.
    loop {
        let count = varint::read_long(input)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes.
            varint::read_long(input)?;
        }
        for _ in 0..count.unsigned_abs() {
            let key = input.read_bytes()?;
            let value = input.read_bytes()?;
            match key.as_slice() {
                b"avro.schema" => schema = Some(value),
                b"avro.codec" if value != b"null" => {
                    let codec = String::from_utf8_lossy(&value);
                    return Err(invalid(&format!("unsupported codec {codec:?}")));
                }
                k if k.starts_with(b"avro.") => {}
                k => {
                    let key = String::from_utf8(k.to_vec())
                        .map_err(|_| invalid("a metadata key is not UTF-8"))?;
                    user.push((key, value));
                }
            }
        }
    }
    let mut marker = [0u8; 16];
    input.read_exact(&mut marker)?;
    let schema = schema.ok_or_else(|| invalid("no avro.schema in header"))?;
    Ok((schema, marker, user))
}

/// Keeps every byte read, within the header size cap.
struct Recorder<'a, T> {
    input: &'a mut T,
    raw: Vec<u8>,
}

impl<T: Read> Recorder<'_, T> {
    fn read_bytes(&mut self) -> io::Result<Vec<u8>> {
        let len = varint::read_long(self)?;
        let len = usize::try_from(len).map_err(|_| invalid("negative length in header"))?;
        if len > MAX_HEADER_BYTES - self.raw.len() {
            return Err(invalid("header too large"));
        }
        let mut out = vec![0u8; len];
        self.read_exact(&mut out)?;
        Ok(out)
    }
}

impl<T: Read> Read for Recorder<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = MAX_HEADER_BYTES - self.raw.len();
        if room == 0 {
            return Err(invalid("header too large"));
        }
        let len = buf.len().min(room);
        let n = self.input.read(&mut buf[..len])?;
        self.raw.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}
