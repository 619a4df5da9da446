//! A DAP-18 task as the client and both aggregators agree on it out of band: who the
//! aggregators are, the VDAF and its parameters, the time precision, and every party's
//! HPKE config. This is the PUBLIC part of a task (no verify key, no private keys), so
//! one file can be handed to clients, servers and the collector alike.
//!
//! The file is JSON; ids, bytes and keys are base64url without padding (RFC 4648 §5):
//! ```json
//! {
//!   "dap_version": "dap-18",
//!   "task_id": "<43 chars>",
//!   "task_info": "<base64url of 1..255 bytes>",
//!   "leader_aggregator_endpoint": "https://leader.example/",
//!   "helper_aggregator_endpoint": "https://helper.example/",
//!   "time_precision": 3600,
//!   "min_batch_size": 100,
//!   "batch_mode": "time_interval",
//!   "vdaf": {"type": "histogram", "length": 8, "chunk_length": 3},
//!   "leader_hpke_config": {"id": 1, "kem_id": 32, "kdf_id": 1, "aead_id": 1, "public_key": "..."},
//!   "helper_hpke_config": {...},
//!   "collector_hpke_config": {...}
//! }
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use prio::codec::{encode_u16_items, CodecError, Encode};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Length of a task id (D18 §4.1: `opaque TaskID[32]`).
pub const TASK_ID_LEN: usize = 32;

/// The only HPKE suite divvi speaks (D18 §7's mandatory one, and all Firefox accepts).
pub const KEM_X25519_HKDF_SHA256: u16 = 0x0020;
pub const KDF_HKDF_SHA256: u16 = 0x0001;
pub const AEAD_AES_128_GCM: u16 = 0x0001;
const X25519_KEY_LEN: usize = 32;

/// A task field that is missing, malformed or out of range, or a task file that cannot
/// be read. `field` is the JSON name (dotted for nested fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("task field {field}: {reason}")]
    Field { field: String, reason: String },
    #[error("task JSON does not parse: {0}")]
    Json(String),
    #[error("task file {path}: {reason}")]
    File { path: String, reason: String },
}

fn field_error(field: &str, reason: impl Into<String>) -> TaskError {
    TaskError::Field {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// `opaque TaskID[32]`; shown as 43 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(pub [u8; TASK_ID_LEN]);

impl TaskId {
    /// A fresh random id (D18 §8.6.1 allows random ids).
    pub fn random() -> Result<Self, TaskError> {
        let mut id = [0u8; TASK_ID_LEN];
        aws_lc_rs::rand::fill(&mut id)
            .map_err(|_| field_error("task_id", "random number generator failed"))?;
        Ok(TaskId(id))
    }

    /// Parses the 43-character base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, TaskError> {
        let bytes = decode_b64("task_id", text)?;
        let id = <[u8; TASK_ID_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            field_error(
                "task_id",
                format!("expected {TASK_ID_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        Ok(TaskId(id))
    }

    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({self})")
    }
}

/// D18 §4.4.1 `HpkeConfig`. Only X25519 / HKDF-SHA256 / AES-128-GCM passes validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpkeConfig {
    pub id: u8,
    pub kem_id: u16,
    pub kdf_id: u16,
    pub aead_id: u16,
    pub public_key: Vec<u8>,
}

impl HpkeConfig {
    /// A config of the supported suite around a raw X25519 public key.
    pub fn x25519(id: u8, public_key: Vec<u8>) -> Self {
        HpkeConfig {
            id,
            kem_id: KEM_X25519_HKDF_SHA256,
            kdf_id: KDF_HKDF_SHA256,
            aead_id: AEAD_AES_128_GCM,
            public_key,
        }
    }

    /// The config as a task file writes it (`{"id": .., "kem_id": .., "public_key": ..}`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(HpkeConfigFile::from(self)).unwrap_or_default()
    }

    /// Refuses suites other than the one divvi implements, and keys of the wrong size.
    pub fn validate(&self, field: &str) -> Result<(), TaskError> {
        let suite = (self.kem_id, self.kdf_id, self.aead_id);
        if suite != (KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_AES_128_GCM) {
            return Err(field_error(
                field,
                format!(
                    "unsupported HPKE suite kem 0x{:04x} / kdf 0x{:04x} / aead 0x{:04x} \
                     (only X25519-HKDF-SHA256 0x0020 / HKDF-SHA256 0x0001 / AES-128-GCM 0x0001)",
                    self.kem_id, self.kdf_id, self.aead_id
                ),
            ));
        }
        if self.public_key.len() != X25519_KEY_LEN {
            return Err(field_error(
                &format!("{field}.public_key"),
                format!(
                    "an X25519 public key is {X25519_KEY_LEN} bytes, got {}",
                    self.public_key.len()
                ),
            ));
        }
        Ok(())
    }
}

/// `id u8 | kem_id u16 | kdf_id u16 | aead_id u16 | u16 len | public_key` (D18 §4.4.1).
impl Encode for HpkeConfig {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        self.id.encode(bytes)?;
        self.kem_id.encode(bytes)?;
        self.kdf_id.encode(bytes)?;
        self.aead_id.encode(bytes)?;
        encode_u16_items(bytes, &(), &self.public_key)
    }
}

/// `HpkeConfigList`: `u16 len | HpkeConfig...` (D09 and D18 §4.4.1), what an aggregator's
/// `hpke_config` endpoint serves, most preferred first.
pub fn encode_config_list(configs: &[HpkeConfig]) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::new();
    encode_u16_items(&mut bytes, &(), configs)?;
    Ok(bytes)
}

/// The VDAF of a task with its parameters (V18 codepoints; D18 App. B configurations).
/// In JSON: `{"type": "histogram", "length": 8, "chunk_length": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VdafConfig {
    Count,
    Sum {
        max_measurement: u64,
    },
    #[serde(rename = "sumvec", alias = "sum_vec")]
    SumVec {
        length: u32,
        max_measurement: u64,
        chunk_length: u32,
    },
    Histogram {
        length: u32,
        chunk_length: u32,
    },
    #[serde(rename = "multihot", alias = "multihot_count_vec")]
    MultihotCountVec {
        length: u32,
        max_weight: u64,
        chunk_length: u32,
    },
    /// Heavy hitters over strings of `bits / 8` bytes (VDAF-18 §8, DAP-18 tasks only).
    Poplar1 {
        bits: u16,
    },
}

/// Poplar1's string lengths: whole bytes, up to 512 of them (a per-report cost linear in
/// `bits` at every level keeps longer strings impractical anyway).
pub const POPLAR1_MAX_BITS: u16 = 4096;

/// Bits needed for values up to `max` (max ≥ 1), as prio encodes them.
fn bits_for(max: u64) -> usize {
    max.ilog2() as usize + 1
}

impl VdafConfig {
    /// The name used in task files and `--vdaf` specs.
    pub fn name(&self) -> &'static str {
        match self {
            VdafConfig::Count => "count",
            VdafConfig::Sum { .. } => "sum",
            VdafConfig::SumVec { .. } => "sumvec",
            VdafConfig::Histogram { .. } => "histogram",
            VdafConfig::MultihotCountVec { .. } => "multihot",
            VdafConfig::Poplar1 { .. } => "poplar1",
        }
    }

    /// The V18 codepoint, the `vdaf_type` of TaskConfiguration (and prio's `algorithm_id`).
    pub fn vdaf_type(&self) -> u32 {
        match self {
            VdafConfig::Count => 0x0000_0001,
            VdafConfig::Sum { .. } => 0x0000_0002,
            VdafConfig::SumVec { .. } => 0x0000_0003,
            VdafConfig::Histogram { .. } => 0x0000_0004,
            VdafConfig::MultihotCountVec { .. } => 0x0000_0005,
            VdafConfig::Poplar1 { .. } => 0x0000_0006,
        }
    }

    /// D18 App. B `vdaf_configuration` bytes (without their u16 prefix).
    pub fn configuration_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match *self {
            VdafConfig::Count => {}
            VdafConfig::Sum { max_measurement } => out.extend(max_measurement.to_be_bytes()),
            VdafConfig::SumVec {
                length,
                max_measurement,
                chunk_length,
            } => {
                out.extend(length.to_be_bytes());
                out.extend(max_measurement.to_be_bytes());
                out.extend(chunk_length.to_be_bytes());
            }
            VdafConfig::Histogram {
                length,
                chunk_length,
            } => {
                out.extend(length.to_be_bytes());
                out.extend(chunk_length.to_be_bytes());
            }
            VdafConfig::MultihotCountVec {
                length,
                max_weight,
                chunk_length,
            } => {
                out.extend(length.to_be_bytes());
                out.extend(chunk_length.to_be_bytes());
                out.extend(max_weight.to_be_bytes());
            }
            VdafConfig::Poplar1 { bits } => out.extend(bits.to_be_bytes()),
        }
        out
    }

    /// Length of the encoded measurement the proof's gadget is chunked over: the bound a
    /// chunk_length may not exceed, and the input of prio's `optimal_chunk_length`.
    fn measurement_length(&self) -> Option<usize> {
        match *self {
            VdafConfig::Count | VdafConfig::Sum { .. } | VdafConfig::Poplar1 { .. } => None,
            VdafConfig::SumVec {
                length,
                max_measurement,
                ..
            } => (length as usize).checked_mul(bits_for(max_measurement.max(1))),
            VdafConfig::Histogram { length, .. } => Some(length as usize),
            VdafConfig::MultihotCountVec {
                length, max_weight, ..
            } => (length as usize).checked_add(bits_for(max_weight.max(1))),
        }
    }

    /// Checks the parameters; `field` prefixes the names in errors (e.g. "vdaf").
    pub fn validate(&self, field: &str) -> Result<(), TaskError> {
        let f = |name: &str| format!("{field}.{name}");
        let nonzero = |name: &str, v: u64| {
            if v == 0 {
                Err(field_error(&f(name), "must be at least 1"))
            } else {
                Ok(())
            }
        };
        let (length, chunk_length) = match *self {
            VdafConfig::Count => return Ok(()),
            VdafConfig::Poplar1 { bits } => {
                if bits == 0 || bits % 8 != 0 || bits > POPLAR1_MAX_BITS {
                    return Err(field_error(
                        &f("bits"),
                        format!(
                            "must be a multiple of 8 between 8 and {POPLAR1_MAX_BITS} (strings are whole bytes), got {bits}"
                        ),
                    ));
                }
                return Ok(());
            }
            VdafConfig::Sum { max_measurement } => {
                return nonzero("max_measurement", max_measurement)
            }
            VdafConfig::SumVec {
                length,
                max_measurement,
                chunk_length,
            } => {
                nonzero("max_measurement", max_measurement)?;
                (length, chunk_length)
            }
            VdafConfig::Histogram {
                length,
                chunk_length,
            } => (length, chunk_length),
            VdafConfig::MultihotCountVec {
                length,
                max_weight,
                chunk_length,
            } => {
                nonzero("max_weight", max_weight)?;
                (length, chunk_length)
            }
        };
        nonzero("length", length.into())?;
        if length == u32::MAX {
            return Err(field_error(&f("length"), "must be below 2^32-1"));
        }
        let max_chunk = self
            .measurement_length()
            .ok_or_else(|| field_error(&f("length"), "too large"))?;
        if chunk_length == 0 || chunk_length as usize > max_chunk {
            return Err(field_error(
                &f("chunk_length"),
                format!(
                    "must be between 1 and the encoded measurement length {max_chunk}, got {chunk_length}"
                ),
            ));
        }
        Ok(())
    }

    /// Checks the parameters for a task of DAP draft `version`.
    pub fn validate_for(&self, version: DapVersion, field: &str) -> Result<(), TaskError> {
        self.validate(field)?;
        match version {
            DapVersion::Dap09 => self.validate_for_vdaf08(field),
            DapVersion::Dap18 => Ok(()),
        }
    }

    /// What VDAF-08 adds: Sum and SumVec bound measurements by a bit count, so the
    /// maximum must be 2^bits - 1; MultihotCountVec is not in VDAF-08.
    fn validate_for_vdaf08(&self, field: &str) -> Result<(), TaskError> {
        let max = match *self {
            VdafConfig::Sum { max_measurement }
            | VdafConfig::SumVec {
                max_measurement, ..
            } => max_measurement,
            VdafConfig::MultihotCountVec { .. } => {
                return Err(field_error(
                    field,
                    "multihot is not a VDAF-08 VDAF, so DAP-09 tasks cannot use it",
                ))
            }
            VdafConfig::Poplar1 { .. } => {
                return Err(field_error(
                    field,
                    "poplar1 tasks speak DAP-18 only (no deployed DAP-09 client sends Poplar1)",
                ))
            }
            VdafConfig::Count | VdafConfig::Histogram { .. } => return Ok(()),
        };
        if max.checked_add(1).is_none_or(|n| !n.is_power_of_two()) {
            return Err(field_error(
                &format!("{field}.max_measurement"),
                format!(
                    "VDAF-08 bounds by bits: max_measurement must be 2^bits - 1 (1, 3, 7, 255, ...), got {max}"
                ),
            ));
        }
        Ok(())
    }

    /// VDAF-08's bit count of a Sum or SumVec measurement (`max_measurement` = 2^bits - 1).
    pub fn bits(&self) -> Option<usize> {
        match *self {
            VdafConfig::Sum { max_measurement }
            | VdafConfig::SumVec {
                max_measurement, ..
            } => Some(bits_for(max_measurement.max(1))),
            _ => None,
        }
    }

    /// Parses the task file's `vdaf` object, refusing keys the VDAF does not have (serde's
    /// `deny_unknown_fields` misses them on fieldless variants such as count).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, TaskError> {
        let vdaf: VdafConfig = serde_json::from_value(value.clone())
            .map_err(|e| field_error("vdaf", e.to_string()))?;
        let known = serde_json::to_value(&vdaf).unwrap_or_default();
        if let (Some(given), Some(known)) = (value.as_object(), known.as_object()) {
            if let Some(extra) = given.keys().find(|k| !known.contains_key(k.as_str())) {
                return Err(field_error(
                    "vdaf",
                    format!("unknown field `{extra}` for VDAF {}", vdaf.name()),
                ));
            }
        }
        Ok(vdaf)
    }

    /// Parses a command-line spec: `count`, `sum:MAX`, `sumvec:LENGTH:MAX[:CHUNK]`,
    /// `histogram:LENGTH[:CHUNK]`, `multihot:LENGTH:MAX_WEIGHT[:CHUNK]`, `poplar1:BITS`. A missing CHUNK is
    /// prio's `optimal_chunk_length` of the encoded measurement length, as Firefox computes
    /// it (so a task serving Firefox gets the chunk length Firefox uses).
    pub fn from_spec(spec: &str) -> Result<Self, TaskError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = |reason: String| field_error("vdaf", format!("spec {spec:?}: {reason}"));
        let num = |i: usize, name: &str| -> Result<u64, TaskError> {
            parts[i]
                .parse::<u64>()
                .map_err(|_| bad(format!("{name} {:?} is not a whole number", parts[i])))
        };
        let num32 = |i: usize, name: &str| -> Result<u32, TaskError> {
            u32::try_from(num(i, name)?).map_err(|_| bad(format!("{name} is above 2^32-1")))
        };
        let arity = |min: usize, max: usize, usage: &str| {
            if parts.len() < min || parts.len() > max {
                Err(bad(format!("expected {usage}")))
            } else {
                Ok(())
            }
        };
        let config = match parts[0] {
            "count" => {
                arity(1, 1, "count")?;
                VdafConfig::Count
            }
            "sum" => {
                arity(2, 2, "sum:MAX")?;
                VdafConfig::Sum {
                    max_measurement: num(1, "MAX")?,
                }
            }
            "sumvec" => {
                arity(3, 4, "sumvec:LENGTH:MAX[:CHUNK]")?;
                VdafConfig::SumVec {
                    length: num32(1, "LENGTH")?,
                    max_measurement: num(2, "MAX")?,
                    chunk_length: 0,
                }
            }
            "histogram" => {
                arity(2, 3, "histogram:LENGTH[:CHUNK]")?;
                VdafConfig::Histogram {
                    length: num32(1, "LENGTH")?,
                    chunk_length: 0,
                }
            }
            "poplar1" => {
                arity(2, 2, "poplar1:BITS")?;
                VdafConfig::Poplar1 {
                    bits: u16::try_from(num(1, "BITS")?)
                        .map_err(|_| bad(format!("BITS is above {POPLAR1_MAX_BITS}")))?,
                }
            }
            "multihot" => {
                arity(3, 4, "multihot:LENGTH:MAX_WEIGHT[:CHUNK]")?;
                VdafConfig::MultihotCountVec {
                    length: num32(1, "LENGTH")?,
                    max_weight: num(2, "MAX_WEIGHT")?,
                    chunk_length: 0,
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown VDAF {other:?} (expected count, sum, sumvec, histogram, multihot or poplar1)"
                )))
            }
        };
        let chunk_at = match config {
            VdafConfig::Histogram { .. } => Some(2),
            VdafConfig::SumVec { .. } | VdafConfig::MultihotCountVec { .. } => Some(3),
            _ => None,
        };
        let chunk = match chunk_at {
            Some(i) if parts.len() > i => Some(num32(i, "CHUNK")?),
            _ => None,
        };
        let config = config.with_chunk_length(chunk);
        config.validate("vdaf")?;
        Ok(config)
    }

    /// The spec [`VdafConfig::from_spec`] reads back as this VDAF, chunk length included.
    pub fn spec(&self) -> String {
        match *self {
            VdafConfig::Count => "count".to_string(),
            VdafConfig::Sum { max_measurement } => format!("sum:{max_measurement}"),
            VdafConfig::SumVec {
                length,
                max_measurement,
                chunk_length,
            } => format!("sumvec:{length}:{max_measurement}:{chunk_length}"),
            VdafConfig::Histogram {
                length,
                chunk_length,
            } => format!("histogram:{length}:{chunk_length}"),
            VdafConfig::MultihotCountVec {
                length,
                max_weight,
                chunk_length,
            } => format!("multihot:{length}:{max_weight}:{chunk_length}"),
            VdafConfig::Poplar1 { bits } => format!("poplar1:{bits}"),
        }
    }

    /// Sets chunk_length (a no-op for Count and Sum); `None` picks prio's optimal one.
    fn with_chunk_length(self, chunk: Option<u32>) -> Self {
        let optimal = || {
            self.measurement_length()
                .filter(|&n| n > 0)
                .map(prio::vdaf::prio3::optimal_chunk_length)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0)
        };
        let chunk_length = chunk.unwrap_or_else(optimal);
        match self {
            VdafConfig::SumVec {
                length,
                max_measurement,
                ..
            } => VdafConfig::SumVec {
                length,
                max_measurement,
                chunk_length,
            },
            VdafConfig::Histogram { length, .. } => VdafConfig::Histogram {
                length,
                chunk_length,
            },
            VdafConfig::MultihotCountVec {
                length, max_weight, ..
            } => VdafConfig::MultihotCountVec {
                length,
                max_weight,
                chunk_length,
            },
            other => other,
        }
    }
}

impl std::str::FromStr for VdafConfig {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, TaskError> {
        VdafConfig::from_spec(s)
    }
}

/// D18 batch modes (§5). Only time_interval is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    TimeInterval,
}

impl BatchMode {
    pub fn code(self) -> u8 {
        match self {
            BatchMode::TimeInterval => 1,
        }
    }
}

/// The DAP draft a task's clients speak. It picks the report encoding (DAP-09 stamps
/// reports in seconds and has no public extensions), the HPKE info and AAD, the VDAF
/// draft (DAP-09: VDAF-08, through the prio 0.16 line; DAP-18: VDAF-18) and the verify
/// key's size. DAP-09 is what the clients already deployed speak (Firefox,
/// @divviup/dap 0.9, janus_client 0.7); DAP-18 is the current draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DapVersion {
    Dap09,
    #[default]
    Dap18,
}

impl DapVersion {
    /// The draft's label, as task files and HPKE info strings spell it ("dap-09").
    pub fn label(self) -> &'static str {
        match self {
            DapVersion::Dap09 => "dap-09",
            DapVersion::Dap18 => "dap-18",
        }
    }

    pub fn from_label(text: &str) -> Result<Self, TaskError> {
        match text {
            "dap-09" => Ok(DapVersion::Dap09),
            "dap-18" => Ok(DapVersion::Dap18),
            other => Err(field_error(
                "dap_version",
                format!("unsupported DAP version {other:?} (expected \"dap-09\" or \"dap-18\")"),
            )),
        }
    }

    /// What a report's time counts, for messages.
    pub fn time_unit_name(self) -> &'static str {
        match self {
            DapVersion::Dap09 => "seconds",
            DapVersion::Dap18 => "time_precision units",
        }
    }

    /// Bytes of the Prio3 verify key: VDAF-08's seeds are 16 bytes, VDAF-18's 32.
    pub fn verify_key_len(self) -> usize {
        match self {
            DapVersion::Dap09 => 16,
            DapVersion::Dap18 => 32,
        }
    }
}

impl std::str::FromStr for DapVersion {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, TaskError> {
        // The command line also takes the bare number.
        match s {
            "09" | "9" => Ok(DapVersion::Dap09),
            "18" => Ok(DapVersion::Dap18),
            other => DapVersion::from_label(other),
        }
    }
}

/// Everything that defines a task, unvalidated: fill it in and pass it to [`Task::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskParams {
    pub dap_version: DapVersion,
    pub task_id: TaskId,
    /// Opaque application bytes, 1..255 of them; bound into every report's AAD.
    pub task_info: Vec<u8>,
    /// Kept as the exact bytes agreed on: they enter the AAD and are never re-encoded.
    pub leader_aggregator_endpoint: String,
    pub helper_aggregator_endpoint: String,
    /// Seconds per time unit (> 0); report times are counted in these units.
    pub time_precision: u64,
    pub min_batch_size: u64,
    pub batch_mode: BatchMode,
    pub vdaf: VdafConfig,
    pub leader_hpke_config: HpkeConfig,
    pub helper_hpke_config: HpkeConfig,
    pub collector_hpke_config: HpkeConfig,
    /// Noise each server adds to its aggregate share (Poplar1 tasks only so far).
    pub dp: Option<super::dp::DpStrategy>,
}

/// A validated task. Built by [`Task::new`], [`Task::from_json`] or [`Task::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    params: TaskParams,
}

impl Task {
    /// Validates every field; the error names the first bad one.
    pub fn new(params: TaskParams) -> Result<Self, TaskError> {
        if params.task_info.is_empty() || params.task_info.len() > 255 {
            return Err(field_error(
                "task_info",
                format!("must be 1 to 255 bytes, got {}", params.task_info.len()),
            ));
        }
        for (field, url) in [
            (
                "leader_aggregator_endpoint",
                &params.leader_aggregator_endpoint,
            ),
            (
                "helper_aggregator_endpoint",
                &params.helper_aggregator_endpoint,
            ),
        ] {
            if url.is_empty() || url.len() > usize::from(u16::MAX) {
                return Err(field_error(field, "must be 1 to 65535 bytes"));
            }
            if !url.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(field_error(
                    field,
                    "must be printable ASCII without spaces (D18 Url)",
                ));
            }
        }
        if params.time_precision == 0 {
            return Err(field_error("time_precision", "must be at least 1 second"));
        }
        if params.min_batch_size == 0 {
            return Err(field_error("min_batch_size", "must be at least 1"));
        }
        params.vdaf.validate_for(params.dap_version, "vdaf")?;
        params.leader_hpke_config.validate("leader_hpke_config")?;
        params.helper_hpke_config.validate("helper_hpke_config")?;
        params
            .collector_hpke_config
            .validate("collector_hpke_config")?;
        Ok(Task { params })
    }

    pub fn params(&self) -> &TaskParams {
        &self.params
    }
    pub fn task_id(&self) -> &TaskId {
        &self.params.task_id
    }
    pub fn vdaf(&self) -> &VdafConfig {
        &self.params.vdaf
    }
    pub fn time_precision(&self) -> u64 {
        self.params.time_precision
    }
    pub fn version(&self) -> DapVersion {
        self.params.dap_version
    }

    /// A report's time as its draft writes it for a clock reading: DAP-18 counts
    /// time_precision units, DAP-09 seconds rounded down to the precision.
    pub fn report_time(&self, unix_seconds: u64) -> u64 {
        let unit = unix_seconds / self.params.time_precision;
        match self.params.dap_version {
            DapVersion::Dap09 => unit * self.params.time_precision,
            DapVersion::Dap18 => unit,
        }
    }

    /// The time_precision unit a report's time falls in: what windows and batches count.
    pub fn time_unit(&self, report_time: u64) -> u64 {
        match self.params.dap_version {
            DapVersion::Dap09 => report_time / self.params.time_precision,
            DapVersion::Dap18 => report_time,
        }
    }

    /// A report's time in Unix seconds (`None` past u64), for the clock-skew check.
    pub fn time_seconds(&self, report_time: u64) -> Option<u64> {
        match self.params.dap_version {
            DapVersion::Dap09 => Some(report_time),
            DapVersion::Dap18 => report_time.checked_mul(self.params.time_precision),
        }
    }

    /// What of the task every input share's and aggregate share's AAD binds after the
    /// task id: DAP-18 the whole [`Task::task_configuration`], DAP-09 nothing.
    pub fn aad_task_binding(&self) -> Vec<u8> {
        match self.params.dap_version {
            DapVersion::Dap09 => Vec::new(),
            DapVersion::Dap18 => self.task_configuration(),
        }
    }

    /// The D18 §4.2 `TaskConfiguration` encoding (extensions empty), as bound into the
    /// AAD of every input share and aggregate share.
    pub fn task_configuration(&self) -> Vec<u8> {
        let p = &self.params;
        let vdaf_config = p.vdaf.configuration_bytes();
        let mut out = Vec::with_capacity(64 + vdaf_config.len());
        // Lengths were checked in `Task::new`, so the casts cannot truncate.
        out.push(p.task_info.len() as u8);
        out.extend(&p.task_info);
        for url in [&p.leader_aggregator_endpoint, &p.helper_aggregator_endpoint] {
            out.extend((url.len() as u16).to_be_bytes());
            out.extend(url.as_bytes());
        }
        out.extend(p.time_precision.to_be_bytes());
        out.extend(p.min_batch_size.to_be_bytes());
        out.push(p.batch_mode.code());
        out.extend(0u16.to_be_bytes()); // batch_config: empty for time_interval
        out.extend(p.vdaf.vdaf_type().to_be_bytes());
        out.extend((vdaf_config.len() as u16).to_be_bytes());
        out.extend(&vdaf_config);
        out.extend(0u16.to_be_bytes()); // extensions: none
        out
    }

    /// Parses and validates a task file's JSON text.
    pub fn from_json(text: &str) -> Result<Self, TaskError> {
        let file: TaskFile =
            serde_json::from_str(text).map_err(|e| TaskError::Json(e.to_string()))?;
        let batch_mode = match file.batch_mode.as_str() {
            "time_interval" => BatchMode::TimeInterval,
            other => {
                return Err(field_error(
                    "batch_mode",
                    format!("unsupported batch mode {other:?} (only \"time_interval\")"),
                ))
            }
        };
        let vdaf = VdafConfig::from_json(&file.vdaf)?;
        let dap_version = match &file.dap_version {
            Some(label) => DapVersion::from_label(label)?,
            None => DapVersion::Dap18,
        };
        Task::new(TaskParams {
            dap_version,
            task_id: TaskId::from_base64url(&file.task_id)?,
            task_info: decode_b64("task_info", &file.task_info)?,
            leader_aggregator_endpoint: file.leader_aggregator_endpoint,
            helper_aggregator_endpoint: file.helper_aggregator_endpoint,
            time_precision: file.time_precision,
            min_batch_size: file.min_batch_size,
            batch_mode,
            vdaf,
            leader_hpke_config: file.leader_hpke_config.parse("leader_hpke_config")?,
            helper_hpke_config: file.helper_hpke_config.parse("helper_hpke_config")?,
            collector_hpke_config: file.collector_hpke_config.parse("collector_hpke_config")?,
            dp: match &file.dp {
                Some(dp) => {
                    Some(super::dp::DpStrategy::from_file(dp).map_err(|e| field_error("dp", e))?)
                }
                None => None,
            },
        })
    }

    /// The task file's JSON text (pretty, with a trailing newline).
    pub fn to_json(&self) -> String {
        let p = &self.params;
        let file = TaskFile {
            dap_version: Some(p.dap_version.label().to_owned()),
            task_id: p.task_id.to_base64url(),
            task_info: URL_SAFE_NO_PAD.encode(&p.task_info),
            leader_aggregator_endpoint: p.leader_aggregator_endpoint.clone(),
            helper_aggregator_endpoint: p.helper_aggregator_endpoint.clone(),
            time_precision: p.time_precision,
            min_batch_size: p.min_batch_size,
            batch_mode: "time_interval".into(),
            vdaf: serde_json::to_value(&p.vdaf).unwrap_or_default(),
            leader_hpke_config: HpkeConfigFile::from(&p.leader_hpke_config),
            helper_hpke_config: HpkeConfigFile::from(&p.helper_hpke_config),
            collector_hpke_config: HpkeConfigFile::from(&p.collector_hpke_config),
            dp: p.dp.map(|dp| dp.to_file()),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads and validates a task file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let file_error = |reason: String| TaskError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        Task::from_json(&text).map_err(|e| file_error(e.to_string()))
    }
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, TaskError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| field_error(field, format!("not base64url without padding: {e}")))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    /// "dap-09" or "dap-18"; task files written before DAP-09 support have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dap_version: Option<String>,
    task_id: String,
    task_info: String,
    leader_aggregator_endpoint: String,
    helper_aggregator_endpoint: String,
    time_precision: u64,
    min_batch_size: u64,
    batch_mode: String,
    vdaf: serde_json::Value,
    leader_hpke_config: HpkeConfigFile,
    helper_hpke_config: HpkeConfigFile,
    collector_hpke_config: HpkeConfigFile,
    /// Differential privacy: absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<super::dp::DpFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HpkeConfigFile {
    id: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    public_key: String,
}

impl HpkeConfigFile {
    fn parse(self, field: &str) -> Result<HpkeConfig, TaskError> {
        Ok(HpkeConfig {
            id: self.id,
            kem_id: self.kem_id,
            kdf_id: self.kdf_id,
            aead_id: self.aead_id,
            public_key: decode_b64(&format!("{field}.public_key"), &self.public_key)?,
        })
    }
}

impl From<&HpkeConfig> for HpkeConfigFile {
    fn from(c: &HpkeConfig) -> Self {
        HpkeConfigFile {
            id: c.id,
            kem_id: c.kem_id,
            kdf_id: c.kdf_id,
            aead_id: c.aead_id,
            public_key: URL_SAFE_NO_PAD.encode(&c.public_key),
        }
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
