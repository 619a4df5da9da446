//! Whole-file helpers for small files (headers, sum parts, signatures) and tests.

use super::header::read_header;
use super::varint::push_long;
use super::{writer_schema, Record, RecordReader, WireError};

/// A container file holding exactly `record`.
pub fn encode_single<R: Record>(record: &R) -> Result<Vec<u8>, WireError> {
    encode_all(std::slice::from_ref(record))
}

/// The one record of a container file; an error if it holds zero or several.
pub fn decode_single<R: Record>(bytes: &[u8]) -> Result<R, WireError> {
    let mut reader = RecordReader::<R, _>::new(bytes)?;
    let Some(first) = reader.next().transpose()? else {
        return Err(WireError::RecordCount {
            record: R::NAME,
            found: 0,
        });
    };
    let mut found = 1;
    for extra in reader {
        extra?;
        found += 1;
    }
    if found == 1 {
        Ok(first)
    } else {
        Err(WireError::RecordCount {
            record: R::NAME,
            found,
        })
    }
}

/// A container file holding `records` in order, byte for byte the same for the same
/// records: metadata in a fixed order and a sync marker derived from the content. Two
/// workers writing the same output thus write identical files, so whichever copy of an
/// object lands, the objects of a batch or sum part still agree with each other.
pub fn encode_all<R: Record>(records: &[R]) -> Result<Vec<u8>, WireError> {
    let schema = R::schema();
    let mut data = Vec::new();
    for record in records {
        let datum = apache_avro::to_avro_datum(schema, record.to_avro()).map_err(|source| {
            WireError::Encode {
                record: R::NAME,
                source,
            }
        })?;
        data.extend_from_slice(&datum);
    }
    let schema_json = serde_json::to_string(schema)
        .map_err(|e| WireError::Malformed(format!("schema of {}: {e}", R::NAME)))?;
    let digest = crate::crypto::sha256(&data);
    let sync = &digest[..16];

    let mut out = Vec::with_capacity(data.len() + schema_json.len() + 64);
    out.extend_from_slice(b"Obj\x01");
    push_long(&mut out, 2); // metadata entries
    for (key, value) in [
        ("avro.schema", schema_json.as_bytes()),
        ("avro.codec", b"null"),
    ] {
        push_bytes(&mut out, key.as_bytes());
        push_bytes(&mut out, value);
    }
    push_long(&mut out, 0); // end of the metadata map
    out.extend_from_slice(sync);
    if !records.is_empty() {
        push_long(&mut out, records.len() as i64);
        push_bytes(&mut out, &data);
        out.extend_from_slice(sync);
    }
    Ok(out)
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Every record of a container file, in memory.
pub fn decode_all<R: Record>(bytes: &[u8]) -> Result<Vec<R>, WireError> {
    RecordReader::<R, _>::new(bytes)?.collect()
}

/// The record type a container file holds, from its writer schema: the bare name (e.g.
/// `"PrioSumPart"`) for records in the ENPA namespace, the full name for any other record.
/// Reads only the file header.
pub fn record_name(mut bytes: &[u8]) -> Result<String, WireError> {
    let header = read_header(&mut bytes)?;
    writer_schema::record_name(&header.schema)
        .map(|declared| declared.name)
        .map_err(WireError::NotARecord)
}
