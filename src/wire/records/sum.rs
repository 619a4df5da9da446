//! A server's sum part (`.sum_N`) and its invalid-packet list (`.invalid_uuid_N.avro`).

use super::{null_last, record, Record};
use crate::wire::{fields::Fields, hex, schema, WireError};
use apache_avro::{types::Value, Schema};
use serde::Serialize;
use uuid::Uuid;

/// `PrioSumPart`: one server's share of the aggregate over a time window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SumPart {
    pub batch_uuids: Vec<Uuid>,
    pub name: String,
    pub bins: i32,
    pub epsilon: f64,
    pub prime: i64,
    pub number_of_servers: i32,
    pub hamming_weight: Option<i32>,
    pub sum: Vec<i64>,
    /// Milliseconds since the Unix epoch.
    pub aggregation_start_time: i64,
    /// Milliseconds since the Unix epoch.
    pub aggregation_end_time: i64,
    /// SHA-256 of the invalid-UUID file.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
    pub total_individual_clients: i64,
}

impl Record for SumPart {
    const NAME: &'static str = "PrioSumPart";

    fn schema() -> &'static Schema {
        &schema::SUM_PART
    }

    fn to_avro(&self) -> Value {
        let uuids = self.batch_uuids.iter().copied().map(Value::Uuid).collect();
        let sum = self.sum.iter().copied().map(Value::Long).collect();
        record([
            ("batch_uuids", Value::Array(uuids)),
            ("name", Value::String(self.name.clone())),
            ("bins", Value::Int(self.bins)),
            ("epsilon", Value::Double(self.epsilon)),
            ("prime", Value::Long(self.prime)),
            ("number_of_servers", Value::Int(self.number_of_servers)),
            (
                "hamming_weight",
                null_last(self.hamming_weight.map(Value::Int)),
            ),
            ("sum", Value::Array(sum)),
            (
                "aggregation_start_time",
                Value::TimestampMillis(self.aggregation_start_time),
            ),
            (
                "aggregation_end_time",
                Value::TimestampMillis(self.aggregation_end_time),
            ),
            (
                "packet_file_digest",
                Value::Bytes(self.packet_file_digest.clone()),
            ),
            (
                "total_individual_clients",
                Value::Long(self.total_individual_clients),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            batch_uuids: f.uuids(0, "batch_uuids")?,
            name: f.string(1, "name")?,
            bins: f.int(2, "bins")?,
            epsilon: f.double(3, "epsilon")?,
            prime: f.long(4, "prime")?,
            number_of_servers: f.int(5, "number_of_servers")?,
            hamming_weight: f.opt_int(6, "hamming_weight")?,
            sum: f.longs(7, "sum")?,
            aggregation_start_time: f.millis(8, "aggregation_start_time")?,
            aggregation_end_time: f.millis(9, "aggregation_end_time")?,
            packet_file_digest: f.bytes(10, "packet_file_digest")?,
            total_individual_clients: f.long(11, "total_individual_clients")?,
        })
    }
}

/// `PrioInvalidPacket`: the uuid of a packet left out of the sum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidPacket {
    pub uuid: Uuid,
}

impl Record for InvalidPacket {
    const NAME: &'static str = "PrioInvalidPacket";

    fn schema() -> &'static Schema {
        &schema::INVALID_PACKET
    }

    fn to_avro(&self) -> Value {
        record([("uuid", Value::Uuid(self.uuid))])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            uuid: f.uuid(0, "uuid")?,
        })
    }
}
