//! A validation batch: its header (`.validity_N`) and verifier shares (`.validity_N.avro`).

use super::{null_last, record, Record};
use crate::wire::{fields::Fields, hex, schema, WireError};
use apache_avro::{types::Value, Schema};
use serde::Serialize;
use uuid::Uuid;

/// `PrioValidityHeader`: one per validation batch, written by a server's intake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidityHeader {
    pub batch_uuid: Uuid,
    pub name: String,
    pub bins: i32,
    pub epsilon: f64,
    pub prime: i64,
    pub number_of_servers: i32,
    pub hamming_weight: Option<i32>,
    /// SHA-256 of the validity packet file.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
}

impl Record for ValidityHeader {
    const NAME: &'static str = "PrioValidityHeader";

    fn schema() -> &'static Schema {
        &schema::VALIDITY_HEADER
    }

    fn to_avro(&self) -> Value {
        record([
            ("batch_uuid", Value::Uuid(self.batch_uuid)),
            ("name", Value::String(self.name.clone())),
            ("bins", Value::Int(self.bins)),
            ("epsilon", Value::Double(self.epsilon)),
            ("prime", Value::Long(self.prime)),
            ("number_of_servers", Value::Int(self.number_of_servers)),
            (
                "hamming_weight",
                null_last(self.hamming_weight.map(Value::Int)),
            ),
            (
                "packet_file_digest",
                Value::Bytes(self.packet_file_digest.clone()),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            batch_uuid: f.uuid(0, "batch_uuid")?,
            name: f.string(1, "name")?,
            bins: f.int(2, "bins")?,
            epsilon: f.double(3, "epsilon")?,
            prime: f.long(4, "prime")?,
            number_of_servers: f.int(5, "number_of_servers")?,
            hamming_weight: f.opt_int(6, "hamming_weight")?,
            packet_file_digest: f.bytes(7, "packet_file_digest")?,
        })
    }
}

/// `PrioValidityPacket`: one packet's verifier share (f(r), g(r), h(r)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidityPacket {
    pub uuid: Uuid,
    pub f_r: i64,
    pub g_r: i64,
    pub h_r: i64,
}

impl Record for ValidityPacket {
    const NAME: &'static str = "PrioValidityPacket";

    fn schema() -> &'static Schema {
        &schema::VALIDITY_PACKET
    }

    fn to_avro(&self) -> Value {
        record([
            ("uuid", Value::Uuid(self.uuid)),
            ("f_r", Value::Long(self.f_r)),
            ("g_r", Value::Long(self.g_r)),
            ("h_r", Value::Long(self.h_r)),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            uuid: f.uuid(0, "uuid")?,
            f_r: f.long(1, "f_r")?,
            g_r: f.long(2, "g_r")?,
            h_r: f.long(3, "h_r")?,
        })
    }
}
