//! A DAP-18 ingestion batch: its header (`.batch`) and one server's share of each report
//! (`.batch.avro`). The records keep the ENPA namespace so divvi's readers, which refuse
//! foreign namespaces, read them as their own; the `Dap` prefix keeps them apart from the
//! `Prio` (ENPA) records.

use super::{record, Record};
use crate::dap::messages::REPORT_ID_LEN;
use crate::dap::task::TASK_ID_LEN;
use crate::wire::{fields::Fields, hex, schema, WireError};
use apache_avro::{types::Value, Schema};
use serde::Serialize;
use uuid::Uuid;

/// `DapIngestionHeader`: one per batch and server, written by the ingestor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapIngestionHeader {
    pub batch_uuid: Uuid,
    /// The aggregation name (also in the object names).
    pub name: String,
    /// The DAP task id (32 bytes).
    #[serde(serialize_with = "hex::bytes")]
    pub task_id: Vec<u8>,
    pub report_count: i64,
    /// Milliseconds since the Unix epoch: the start of the earliest report's time unit.
    pub batch_start_time: i64,
    /// Milliseconds since the Unix epoch: the end of the latest report's time unit.
    pub batch_end_time: i64,
    /// SHA-256 of the packet file.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
}

impl Record for DapIngestionHeader {
    const NAME: &'static str = "DapIngestionHeader";

    fn schema() -> &'static Schema {
        &schema::DAP_INGESTION_HEADER
    }

    fn to_avro(&self) -> Value {
        record([
            ("batch_uuid", Value::Uuid(self.batch_uuid)),
            ("name", Value::String(self.name.clone())),
            ("task_id", Value::Bytes(self.task_id.clone())),
            ("report_count", Value::Long(self.report_count)),
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
            task_id: fixed_len(Self::NAME, "task_id", f.bytes(2, "task_id")?, TASK_ID_LEN)?,
            report_count: f.long(3, "report_count")?,
            batch_start_time: f.millis(4, "batch_start_time")?,
            batch_end_time: f.millis(5, "batch_end_time")?,
            packet_file_digest: f.bytes(6, "packet_file_digest")?,
        })
    }
}

/// `DapReportShare`: a report's metadata and public share, and the one encrypted input
/// share addressed to the server whose batch holds it (DAP-18 `HpkeCiphertext` fields).
/// The server rebuilds the HPKE AAD from these fields and its task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapReportShare {
    #[serde(serialize_with = "hex::bytes")]
    pub report_id: Vec<u8>,
    /// Units of the task's time_precision since the epoch, as in the report.
    pub time: i64,
    #[serde(serialize_with = "hex::bytes")]
    pub public_share: Vec<u8>,
    /// The HPKE config id (0-255) the share is sealed to.
    pub config_id: i32,
    #[serde(serialize_with = "hex::bytes")]
    pub enc: Vec<u8>,
    #[serde(serialize_with = "hex::bytes")]
    pub payload: Vec<u8>,
}

impl Record for DapReportShare {
    const NAME: &'static str = "DapReportShare";

    fn schema() -> &'static Schema {
        &schema::DAP_REPORT_SHARE
    }

    fn to_avro(&self) -> Value {
        record([
            ("report_id", Value::Bytes(self.report_id.clone())),
            ("time", Value::Long(self.time)),
            ("public_share", Value::Bytes(self.public_share.clone())),
            ("config_id", Value::Int(self.config_id)),
            ("enc", Value::Bytes(self.enc.clone())),
            ("payload", Value::Bytes(self.payload.clone())),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        let report_id = f.bytes(0, "report_id")?;
        Ok(Self {
            report_id: fixed_len(Self::NAME, "report_id", report_id, REPORT_ID_LEN)?,
            time: f.long(1, "time")?,
            public_share: f.bytes(2, "public_share")?,
            config_id: f.int(3, "config_id")?,
            enc: f.bytes(4, "enc")?,
            payload: f.bytes(5, "payload")?,
        })
    }
}

/// Refuses a byte field whose length is not the DAP type's fixed length.
fn fixed_len(
    record: &'static str,
    field: &'static str,
    bytes: Vec<u8>,
    len: usize,
) -> Result<Vec<u8>, WireError> {
    match bytes.len() == len {
        true => Ok(bytes),
        false => Err(WireError::BadField {
            record,
            field,
            reason: format!("{} bytes, must be {len}", bytes.len()),
        }),
    }
}
