//! The ENPA v1 wire format: the seven Avro records and the object container files
//! that carry them. Schemas are embedded from `schemas/*.avsc` and parsed once.
//!
//! Reading streams block by block; records are converted from `apache_avro::types::Value`
//! by hand (not through serde) because packet files hold hundreds of thousands of records,
//! and the DAP report and verifier shares, read by the million, straight from their
//! datums (`datum`) when a file was written with exactly our schema.
//! Untrusted input is checked by our own code (`header`, `writer_schema`, `guard`) before
//! apache-avro parses or decodes it, because apache-avro 0.21 panics or aborts on some
//! malformed files.

mod datum;
mod error;
mod fields;
mod guard;
mod header;
mod hex;
mod inline_signature;
mod reader;
mod records;
mod schema;
mod slot;
mod varint;
mod whole_file;
mod write_tap;
mod writer;
mod writer_schema;

#[cfg(test)]
pub(crate) mod tests;

pub use error::WireError;
pub use inline_signature::{
    read_signature_prefix, write_inline_signature, SignaturePrefix, SyncTrailer,
};
pub use reader::RecordReader;
pub use records::{
    BatchSignature, DapIngestionHeader, DapReportShare, DapSumPart, DapValidationHeader,
    DapVerifierShare, DataSharePacket, IngestionHeader, InvalidPacket, Poplar1RoundHeader,
    Prio2Parameters, Record, SumPart, ValidityHeader, ValidityPacket,
};
pub use whole_file::{
    decode_all, decode_single, decode_single_with_metadata, encode_all, encode_single,
    encode_single_with_metadata, record_name, UserMetadata,
};
pub use writer::RecordWriter;
