//! An ingestion batch: its header (`.batch`) and its packets (`.batch.avro`).

use super::{null_first, null_last, record, Record};
use crate::wire::{fields::Fields, hex, schema, WireError};
use apache_avro::{types::Value, Schema};
use serde::Serialize;
use uuid::Uuid;

/// `PrioIngestionHeader`: one per batch, written by the ingestor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestionHeader {
    pub batch_uuid: Uuid,
    pub name: String,
    pub bins: i32,
    pub epsilon: f64,
    pub prime: i64,
    pub number_of_servers: i32,
    pub hamming_weight: Option<i32>,
    /// Milliseconds since the Unix epoch.
    pub batch_start_time: i64,
    /// Milliseconds since the Unix epoch.
    pub batch_end_time: i64,
    /// SHA-256 of the packet file.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
}

impl Record for IngestionHeader {
    const NAME: &'static str = "PrioIngestionHeader";

    fn schema() -> &'static Schema {
        &schema::INGESTION_HEADER
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
                "batch_start_time",
                Value::TimestampMillis(self.batch_start_time),
            ),
            (
                "batch_end_time",
                Value::TimestampMillis(self.batch_end_time),
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
            batch_start_time: f.millis(7, "batch_start_time")?,
            batch_end_time: f.millis(8, "batch_end_time")?,
            packet_file_digest: f.bytes(9, "packet_file_digest")?,
        })
    }
}

/// `PrioDataSharePacket`: one client's encrypted share for one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSharePacket {
    pub uuid: Uuid,
    #[serde(serialize_with = "hex::bytes")]
    pub encrypted_payload: Vec<u8>,
    /// `None`: the server tries each of its keys.
    pub encryption_key_id: Option<String>,
    pub r_pit: i64,
    pub version_configuration: Option<String>,
    #[serde(serialize_with = "hex::opt_bytes")]
    pub device_nonce: Option<Vec<u8>>,
}

impl Record for DataSharePacket {
    const NAME: &'static str = "PrioDataSharePacket";

    fn schema() -> &'static Schema {
        &schema::DATA_SHARE_PACKET
    }

    fn to_avro(&self) -> Value {
        record([
            ("uuid", Value::Uuid(self.uuid)),
            (
                "encrypted_payload",
                Value::Bytes(self.encrypted_payload.clone()),
            ),
            (
                "encryption_key_id",
                null_first(self.encryption_key_id.clone().map(Value::String)),
            ),
            ("r_pit", Value::Long(self.r_pit)),
            (
                "version_configuration",
                null_first(self.version_configuration.clone().map(Value::String)),
            ),
            (
                "device_nonce",
                null_first(self.device_nonce.clone().map(Value::Bytes)),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            uuid: f.uuid(0, "uuid")?,
            encrypted_payload: f.bytes(1, "encrypted_payload")?,
            encryption_key_id: f.opt_string(2, "encryption_key_id")?,
            r_pit: f.long(3, "r_pit")?,
            version_configuration: f.opt_string(4, "version_configuration")?,
            device_nonce: f.opt_bytes(5, "device_nonce")?,
        })
    }
}
