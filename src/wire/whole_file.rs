//! Whole-file helpers for small files (headers, sum parts, signatures) and tests.

use super::header::read_header;
use super::{writer_schema, Record, RecordReader, RecordWriter, WireError};

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

/// A container file holding `records` in order.
pub fn encode_all<R: Record>(records: &[R]) -> Result<Vec<u8>, WireError> {
    let mut writer = RecordWriter::new(Vec::new())?;
    for record in records {
        writer.append(record)?;
    }
    writer.finish()
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
