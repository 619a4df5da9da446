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
