//! A DAP-18 ingestion batch: its header (`.batch`) and one server's share of each report
//! (`.batch.avro`); and a server's DAP sum part, its sealed aggregate share for the
//! collector. The records keep the ENPA namespace so divvi's readers, which refuse
//! foreign namespaces, read them as their own; the `Dap` prefix keeps them apart from the
//! `Prio` (ENPA) records.

use super::{record, AvroBytes, Record};
use crate::crypto::PacketDigest;
use crate::dap::aggregate_share::REPORT_ID_CHECKSUM_LEN;
use crate::dap::messages::REPORT_ID_LEN;
use crate::dap::task::TASK_ID_LEN;
use crate::wire::{datum::Datum, fields::Fields, hex, schema, WireError};
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
    /// The packet file's digest, by `packet_file_digest_algorithm`.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
    /// BLAKE3 as divvi writes them now; SHA-256 in batches written before the field.
    pub packet_file_digest_algorithm: PacketDigest,
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
            (
                "packet_file_digest_algorithm",
                Value::String(self.packet_file_digest_algorithm.name().into()),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        let batch_uuid = f.uuid(0, "batch_uuid")?;
        let name = f.string(1, "name")?;
        let task_id = fixed_len(Self::NAME, "task_id", f.bytes(2, "task_id")?, TASK_ID_LEN)?;
        let report_count = f.long(3, "report_count")?;
        let batch_start_time = f.millis(4, "batch_start_time")?;
        let batch_end_time = f.millis(5, "batch_end_time")?;
        let packet_file_digest = f.bytes(6, "packet_file_digest")?;
        let packet_file_digest_algorithm =
            digest_algorithm(Self::NAME, f.string(7, "packet_file_digest_algorithm")?)?;
        Ok(Self {
            batch_uuid,
            name,
            task_id,
            report_count,
            batch_start_time,
            batch_end_time,
            packet_file_digest,
            packet_file_digest_algorithm,
        })
    }
}

/// A header's `packet_file_digest_algorithm`, by the name it carries.
fn digest_algorithm(record: &'static str, name: String) -> Result<PacketDigest, WireError> {
    PacketDigest::from_name(&name).ok_or_else(|| WireError::BadField {
        record,
        field: "packet_file_digest_algorithm",
        reason: format!("{name:?} is not a digest divvi knows (SHA-256, BLAKE3)"),
    })
}

/// `DapReportShare`: a report's metadata and public share, and the one encrypted input
/// share addressed to the server whose batch holds it (DAP-18 `HpkeCiphertext` fields).
/// The server rebuilds the HPKE AAD from these fields and its task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapReportShare {
    #[serde(serialize_with = "hex::bytes")]
    pub report_id: Vec<u8>,
    /// The report's time as its DAP draft states it: DAP-18 in time_precision units,
    /// DAP-09 in seconds.
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

    const FROM_DATUM: bool = true;

    fn from_datum(datum: &[u8]) -> Result<Self, WireError> {
        let mut d = Datum::new(Self::NAME, datum);
        let report_id = d.bytes("report_id")?;
        let share = Self {
            report_id: fixed_len(Self::NAME, "report_id", report_id, REPORT_ID_LEN)?,
            time: d.long("time")?,
            public_share: d.bytes("public_share")?,
            config_id: d.int("config_id")?,
            enc: d.bytes("enc")?,
            payload: d.bytes("payload")?,
        };
        d.end().map(|()| share)
    }

    fn append_to<W: std::io::Write>(
        &self,
        writer: &mut apache_avro::Writer<'_, W>,
    ) -> apache_avro::AvroResult<usize> {
        writer.append_ser(AvroFields(self))
    }
}

/// A record's fields as Avro serializes them straight into a block (the derived
/// `Serialize` is `divvi inspect`'s JSON, with bytes as hex).
struct AvroFields<'a, R>(&'a R);

impl serde::Serialize for AvroFields<'_, DapReportShare> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.0;
        let mut out = s.serialize_struct(DapReportShare::NAME, 6)?;
        out.serialize_field("report_id", &AvroBytes(&r.report_id))?;
        out.serialize_field("time", &r.time)?;
        out.serialize_field("public_share", &AvroBytes(&r.public_share))?;
        out.serialize_field("config_id", &r.config_id)?;
        out.serialize_field("enc", &AvroBytes(&r.enc))?;
        out.serialize_field("payload", &AvroBytes(&r.payload))?;
        out.end()
    }
}

impl serde::Serialize for AvroFields<'_, DapVerifierShare> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.0;
        let mut out = s.serialize_struct(DapVerifierShare::NAME, 2)?;
        out.serialize_field("report_id", &AvroBytes(&r.report_id))?;
        out.serialize_field("verifier_share", &AvroBytes(&r.verifier_share))?;
        out.end()
    }
}

/// `DapSumPart`: one server's share of a DAP task's aggregate over a batch interval,
/// sealed to the collector (DAP-18 `HpkeCiphertext` fields), with what the collector
/// checks the two servers agree on: the batches, the report count and the checksum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapSumPart {
    pub batch_uuids: Vec<Uuid>,
    /// The aggregation name.
    pub name: String,
    /// The DAP task id (32 bytes).
    #[serde(serialize_with = "hex::bytes")]
    pub task_id: Vec<u8>,
    /// The batch interval in units of the task's time_precision, as bound into the AAD.
    pub interval_start: i64,
    pub interval_duration: i64,
    pub report_count: i64,
    /// XOR of SHA-256 of each aggregated report's id (32 bytes).
    #[serde(serialize_with = "hex::bytes")]
    pub checksum: Vec<u8>,
    /// The collector's HPKE config id (0-255) the aggregate share is sealed to.
    pub collector_config_id: i32,
    #[serde(serialize_with = "hex::bytes")]
    pub encrypted_aggregate_share_enc: Vec<u8>,
    #[serde(serialize_with = "hex::bytes")]
    pub encrypted_aggregate_share_payload: Vec<u8>,
    /// Milliseconds since the Unix epoch: the start of the aggregation window.
    pub aggregation_start_time: i64,
    /// Milliseconds since the Unix epoch: the end of the aggregation window.
    pub aggregation_end_time: i64,
    /// SHA-256 of the invalid-report file.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
}

impl Record for DapSumPart {
    const NAME: &'static str = "DapSumPart";

    fn schema() -> &'static Schema {
        &schema::DAP_SUM_PART
    }

    fn to_avro(&self) -> Value {
        let uuids = self.batch_uuids.iter().copied().map(Value::Uuid).collect();
        record([
            ("batch_uuids", Value::Array(uuids)),
            ("name", Value::String(self.name.clone())),
            ("task_id", Value::Bytes(self.task_id.clone())),
            ("interval_start", Value::Long(self.interval_start)),
            ("interval_duration", Value::Long(self.interval_duration)),
            ("report_count", Value::Long(self.report_count)),
            ("checksum", Value::Bytes(self.checksum.clone())),
            ("collector_config_id", Value::Int(self.collector_config_id)),
            (
                "encrypted_aggregate_share_enc",
                Value::Bytes(self.encrypted_aggregate_share_enc.clone()),
            ),
            (
                "encrypted_aggregate_share_payload",
                Value::Bytes(self.encrypted_aggregate_share_payload.clone()),
            ),
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
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        let (name, id) = (Self::NAME, "collector_config_id");
        Ok(Self {
            batch_uuids: f.uuids(0, "batch_uuids")?,
            name: f.string(1, "name")?,
            task_id: fixed_len(name, "task_id", f.bytes(2, "task_id")?, TASK_ID_LEN)?,
            interval_start: f.long(3, "interval_start")?,
            interval_duration: f.long(4, "interval_duration")?,
            report_count: f.long(5, "report_count")?,
            checksum: fixed_len(
                name,
                "checksum",
                f.bytes(6, "checksum")?,
                REPORT_ID_CHECKSUM_LEN,
            )?,
            collector_config_id: config_id(name, id, f.int(7, id)?)?,
            encrypted_aggregate_share_enc: f.bytes(8, "encrypted_aggregate_share_enc")?,
            encrypted_aggregate_share_payload: f.bytes(9, "encrypted_aggregate_share_payload")?,
            aggregation_start_time: f.millis(10, "aggregation_start_time")?,
            aggregation_end_time: f.millis(11, "aggregation_end_time")?,
            packet_file_digest: f.bytes(12, "packet_file_digest")?,
        })
    }
}

/// Refuses an HPKE config id outside DAP's `uint8`.
fn config_id(record: &'static str, field: &'static str, id: i32) -> Result<i32, WireError> {
    match u8::try_from(id) {
        Ok(_) => Ok(id),
        Err(_) => Err(WireError::BadField {
            record,
            field,
            reason: format!("{id} is not an HPKE config id (0-255)"),
        }),
    }
}

/// `DapValidationHeader`: heads a server's verifier shares of one ingestion batch, the
/// DAP counterpart of `PrioValidityHeader`; it names the ingestion batch and its task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapValidationHeader {
    pub batch_uuid: Uuid,
    pub name: String,
    #[serde(serialize_with = "hex::bytes")]
    pub task_id: Vec<u8>,
    /// The digest of this batch's packet file (its `DapVerifierShare`s), by
    /// `packet_file_digest_algorithm`.
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
    /// BLAKE3 as divvi writes them now; SHA-256 in validations written before the field.
    pub packet_file_digest_algorithm: PacketDigest,
}

impl Record for DapValidationHeader {
    const NAME: &'static str = "DapValidationHeader";

    fn schema() -> &'static Schema {
        &schema::DAP_VALIDATION_HEADER
    }

    fn to_avro(&self) -> Value {
        record([
            ("batch_uuid", Value::Uuid(self.batch_uuid)),
            ("name", Value::String(self.name.clone())),
            ("task_id", Value::Bytes(self.task_id.clone())),
            (
                "packet_file_digest",
                Value::Bytes(self.packet_file_digest.clone()),
            ),
            (
                "packet_file_digest_algorithm",
                Value::String(self.packet_file_digest_algorithm.name().into()),
            ),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        Ok(Self {
            batch_uuid: f.uuid(0, "batch_uuid")?,
            name: f.string(1, "name")?,
            task_id: fixed_len(Self::NAME, "task_id", f.bytes(2, "task_id")?, TASK_ID_LEN)?,
            packet_file_digest: f.bytes(3, "packet_file_digest")?,
            packet_file_digest_algorithm: digest_algorithm(
                Self::NAME,
                f.string(4, "packet_file_digest_algorithm")?,
            )?,
        })
    }
}

/// `Poplar1RoundHeader`: heads a server's verifier shares of one ingestion batch in one
/// round of one Poplar1 pass (the records are `DapVerifierShare`s). It binds the pass
/// (its index and aggregation parameter) and the round, so shares of one round or pass
/// cannot be passed off as another's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Poplar1RoundHeader {
    pub batch_uuid: Uuid,
    pub name: String,
    #[serde(serialize_with = "hex::bytes")]
    pub task_id: Vec<u8>,
    pub pass_index: i32,
    /// 1 or 2: Poplar1 verifies a report in two rounds.
    pub round: i32,
    /// The pass's VDAF-18 aggregation parameter (level and prefixes), encoded.
    #[serde(serialize_with = "hex::bytes")]
    pub aggregation_parameter: Vec<u8>,
    /// SHA-256 of this batch's packet file (its `DapVerifierShare`s).
    #[serde(serialize_with = "hex::bytes")]
    pub packet_file_digest: Vec<u8>,
}

impl Record for Poplar1RoundHeader {
    const NAME: &'static str = "Poplar1RoundHeader";

    fn schema() -> &'static Schema {
        &schema::POPLAR1_ROUND_HEADER
    }

    fn to_avro(&self) -> Value {
        record([
            ("batch_uuid", Value::Uuid(self.batch_uuid)),
            ("name", Value::String(self.name.clone())),
            ("task_id", Value::Bytes(self.task_id.clone())),
            ("pass_index", Value::Int(self.pass_index)),
            ("round", Value::Int(self.round)),
            (
                "aggregation_parameter",
                Value::Bytes(self.aggregation_parameter.clone()),
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
            pass_index: f.int(3, "pass_index")?,
            round: f.int(4, "round")?,
            aggregation_parameter: f.bytes(5, "aggregation_parameter")?,
            packet_file_digest: f.bytes(6, "packet_file_digest")?,
        })
    }
}

/// `DapVerifierShare`: one server's VDAF verifier share of one report, sent to the peer
/// (the DAP counterpart of `PrioValidityPacket`'s f_r, g_r, h_r).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DapVerifierShare {
    #[serde(serialize_with = "hex::bytes")]
    pub report_id: Vec<u8>,
    #[serde(serialize_with = "hex::bytes")]
    pub verifier_share: Vec<u8>,
}

impl Record for DapVerifierShare {
    const NAME: &'static str = "DapVerifierShare";

    fn schema() -> &'static Schema {
        &schema::DAP_VERIFIER_SHARE
    }

    fn to_avro(&self) -> Value {
        record([
            ("report_id", Value::Bytes(self.report_id.clone())),
            ("verifier_share", Value::Bytes(self.verifier_share.clone())),
        ])
    }

    fn from_avro(value: Value) -> Result<Self, WireError> {
        let mut f = Fields::new(Self::NAME, value)?;
        let report_id = f.bytes(0, "report_id")?;
        Ok(Self {
            report_id: fixed_len(Self::NAME, "report_id", report_id, REPORT_ID_LEN)?,
            verifier_share: f.bytes(1, "verifier_share")?,
        })
    }

    const FROM_DATUM: bool = true;

    fn from_datum(datum: &[u8]) -> Result<Self, WireError> {
        let mut d = Datum::new(Self::NAME, datum);
        let report_id = d.bytes("report_id")?;
        let share = Self {
            report_id: fixed_len(Self::NAME, "report_id", report_id, REPORT_ID_LEN)?,
            verifier_share: d.bytes("verifier_share")?,
        };
        d.end().map(|()| share)
    }

    fn append_to<W: std::io::Write>(
        &self,
        writer: &mut apache_avro::Writer<'_, W>,
    ) -> apache_avro::AvroResult<usize> {
        writer.append_ser(AvroFields(self))
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
