//! The signature object (`.sig`) of any header; in single-object form it also carries
//! the header and packet files inline.

use super::{null_first, record, Record};
use crate::wire::{fields::Fields, hex, schema, WireError};
use apache_avro::{types::Value, Schema};
use serde::Serialize;

/// `PrioBatchSignature`: DER ECDSA P-256 signature over the header file's bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchSignature {
    #[serde(serialize_with = "hex::bytes")]
    pub batch_header_signature: Vec<u8>,
    pub key_identifier: String,
    /// The header file's bytes (single-object form only).
    #[serde(serialize_with = "hex::opt_bytes")]
    pub batch_header: Option<Vec<u8>>,
    /// The packet file's bytes (single-object form only).
    #[serde(serialize_with = "hex::opt_bytes")]
    pub packets: Option<Vec<u8>>,
}

impl Record for BatchSignature {
    const NAME: &'static str = "PrioBatchSignature";

    fn schema() -> &'static Schema {
        &schema::BATCH_SIGNATURE
    }

    fn to_avro(&self) -> Value {
        record([
            (
                "batch_header_signature",
                Value::Bytes(self.batch_header_signature.clone()),
            ),
            ("key_identifier", Value::String(self.key_identifier.clone())),
            (
                "batch_header",
                null_first(self.batch_header.clone().map(Value::Bytes)),
            ),
            (
                "packets",
                null_first(self.packets.clone().map(Value::Bytes)),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            batch_header_signature: f.bytes(0, "batch_header_signature")?,
            key_identifier: f.string(1, "key_identifier")?,
            batch_header: f.opt_bytes(2, "batch_header")?,
            packets: f.opt_bytes(3, "packets")?,
        })
    }
}
