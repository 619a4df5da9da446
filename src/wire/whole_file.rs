//! Whole-file helpers for small files (headers, sum parts, signatures) and tests.

use super::header::read_header;
use super::varint::push_long;
use super::writer::BLOCK_SIZE;
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
/// records: metadata in a fixed order, a sync marker derived from the content, and a new
/// block wherever one reaches the streaming writer's block size (so a reader holds one
/// small block at a time, not a whole batch). Two workers writing the same output thus
/// write identical files, so whichever copy of an object lands, the objects of a batch or
/// sum part still agree with each other.
pub fn encode_all<R: Record>(records: &[R]) -> Result<Vec<u8>, WireError> {
    encode_all_with_metadata(records, &[])
}

/// A container file holding exactly `record`, with `metadata` entries (keys outside
/// Avro's `avro.` namespace) after the schema and codec: what a signature over the file
/// covers beyond the record, and what any Avro reader ignores.
pub fn encode_single_with_metadata<R: Record>(
    record: &R,
    metadata: &[(&str, Vec<u8>)],
) -> Result<Vec<u8>, WireError> {
    encode_all_with_metadata(std::slice::from_ref(record), metadata)
}

fn encode_all_with_metadata<R: Record>(
    records: &[R],
    metadata: &[(&str, Vec<u8>)],
) -> Result<Vec<u8>, WireError> {
    if let Some((key, _)) = metadata.iter().find(|(k, _)| k.starts_with("avro.")) {
        return Err(WireError::Malformed(format!(
            "metadata key {key} is reserved by Avro"
        )));
    }
    let schema = R::schema();
    // (record count, encoded records) of each block, and a digest over all of them.
    let mut blocks: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut content = crate::crypto::Sha256Stream::new();
    for record in records {
        let datum = apache_avro::to_avro_datum(schema, record.to_avro()).map_err(|source| {
            WireError::Encode {
                record: R::NAME,
                source,
            }
        })?;
        content.update(&datum);
        match blocks.last_mut() {
            Some((count, data)) if data.len() < BLOCK_SIZE => {
                *count += 1;
                data.extend_from_slice(&datum);
            }
            _ => blocks.push((1, datum)),
        }
    }
    let schema_json = serde_json::to_string(schema)
        .map_err(|e| WireError::Malformed(format!("schema of {}: {e}", R::NAME)))?;
    let digest = content.finish();
    let sync = &digest[..16];

    let data_len: usize = blocks.iter().map(|(_, data)| data.len() + 32).sum();
    let mut out = Vec::with_capacity(data_len + schema_json.len() + 64);
    out.extend_from_slice(b"Obj\x01");
    push_long(&mut out, 2 + metadata.len() as i64); // metadata entries
    let reserved: [(&str, &[u8]); 2] = [
        ("avro.schema", schema_json.as_bytes()),
        ("avro.codec", b"null"),
    ];
    let user = metadata.iter().map(|(k, v)| (*k, v.as_slice()));
    for (key, value) in reserved.into_iter().chain(user) {
        push_bytes(&mut out, key.as_bytes());
        push_bytes(&mut out, value);
    }
    push_long(&mut out, 0); // end of the metadata map
    out.extend_from_slice(sync);
    for (count, data) in &blocks {
        push_long(&mut out, *count);
        push_bytes(&mut out, data);
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

/// A container file's metadata entries outside `avro.`, in file order.
pub type UserMetadata = Vec<(String, Vec<u8>)>;

/// The one record of a container file with its user metadata (keys outside `avro.`).
pub fn decode_single_with_metadata<R: Record>(
    bytes: &[u8],
) -> Result<(R, UserMetadata), WireError> {
    let record = decode_single(bytes)?;
    let mut header_bytes = bytes;
    let header = read_header(&mut header_bytes)?;
    Ok((record, header.user_metadata))
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
