//! The seven ENPA v1 records and the three DAP records (ingestion header, report share,
//! sum part) as plain Rust structs,
//! and their mapping to Avro values.

mod dap;
mod ingestion;
mod parameters;
mod signature;
mod sum;
mod validity;

pub use dap::{
    DapIngestionHeader, DapReportShare, DapSumPart, DapValidationHeader, DapVerifierShare,
    Poplar1RoundHeader,
};
pub use ingestion::{DataSharePacket, IngestionHeader};
pub use parameters::Prio2Parameters;
pub use signature::BatchSignature;
pub use sum::{InvalidPacket, SumPart};
pub use validity::{ValidityHeader, ValidityPacket};

use super::WireError;
use apache_avro::{types::Value, Schema};

/// A record type of the ENPA v1 format (or divvi's DAP ingestion records beside it).
pub trait Record: Sized {
    /// The Avro record name (without namespace), e.g. `"PrioIngestionHeader"`.
    const NAME: &'static str;
    /// Our schema for this record, parsed once.
    fn schema() -> &'static Schema;
    fn to_avro(&self) -> Value;
    fn from_avro(value: Value) -> Result<Self, WireError>;

    /// Whether [`Record::from_datum`] decodes this record: the records read by the
    /// million do, when a file was written with exactly our schema.
    const FROM_DATUM: bool = false;

    /// Decodes one record from exactly its datum's bytes (written with our schema), with
    /// the same checks as [`Record::from_avro`]; only called where `FROM_DATUM` holds.
    fn from_datum(_datum: &[u8]) -> Result<Self, WireError> {
        Err(WireError::Malformed(format!(
            "{} records are decoded through Avro values only",
            Self::NAME
        )))
    }

    /// Appends this record to a container file. Through [`Record::to_avro`]'s value by
    /// default; the records written by the million (DAP report and verifier shares)
    /// serialize their fields straight into the block instead, with no copies.
    fn append_to<W: std::io::Write>(
        &self,
        writer: &mut apache_avro::Writer<'_, W>,
    ) -> apache_avro::AvroResult<usize> {
        writer.append_value_ref(&self.to_avro())
    }
}

/// A byte field as Avro `bytes`, for records that serialize straight into a block.
struct AvroBytes<'a>(&'a [u8]);

impl serde::Serialize for AvroBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Builds a record value; `fields` must follow the schema's field order.
fn record<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

/// A `["null", T]` union: null is branch 0.
fn null_first(value: Option<Value>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

/// A `[T, "null"]` union (`hamming_weight`): null is branch 1.
fn null_last(value: Option<Value>) -> Value {
    match value {
        None => Value::Union(1, Box::new(Value::Null)),
        Some(v) => Value::Union(0, Box::new(v)),
    }
}
