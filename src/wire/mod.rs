//! The ENPA v1 wire format: the seven Avro records and the object container files
//! that carry them. Schemas are embedded from `schemas/*.avsc` and parsed once.
//!
//! Reading streams block by block; records are converted from `apache_avro::types::Value`
//! by hand (not through serde) because packet files hold hundreds of thousands of records.

mod container;
mod error;
mod fields;
mod hex;
mod io_tap;
mod records;
mod schema;
mod whole_file;

#[cfg(test)]
mod tests;

pub use container::{RecordReader, RecordWriter};
pub use error::WireError;
pub use records::{
    BatchSignature, DataSharePacket, IngestionHeader, InvalidPacket, Record, SumPart,
    ValidityHeader, ValidityPacket,
};
pub use whole_file::{decode_all, decode_single, encode_all, encode_single, record_name};
