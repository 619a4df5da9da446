//! IETF DAP-18 (draft-ietf-ppm-dap-18) with the Prio3 VDAFs of VDAF-18 (prio 0.18.1) and
//! Poplar1 (heavy hitters, `poplar1`), and
//! DAP-09 with VDAF-08 (prio 0.16), which the deployed clients speak:
//! the public task definition, the upload messages, DAP's HPKE framing of input shares,
//! the Prio3 steps byte in / byte out, the client that turns measurements into
//! reports, and what an aggregator sends the collector (its sealed aggregate share and
//! the report-id checksum). The byte-level facts are in `DAP-FORMAT.md`.
//!
//! Inside, the layers of the rest of divvi hold: `task` and `messages` are wire
//! encodings, `hpke` is sealing (over `crate::crypto`'s one HPKE), `prio3` and
//! `measurement` are the VDAF, `client` puts them together, and `aggregate_share` is
//! what an aggregator hands the collector.

pub mod aggregate_share;
pub mod client;
pub mod dp;
pub mod hpke;
pub mod measurement;
pub mod messages;
pub mod poplar1;
pub mod prio3;
pub mod secrets;
mod step_error;
pub mod task;

pub use aggregate_share::{
    aggregate_share_info, seal_aggregate_share, AggregateShareAad, BatchInterval, IntervalError,
    ReportIdChecksum, REPORT_ID_CHECKSUM_LEN,
};
pub use client::{ClientError, DapClient};
pub use hpke::{HpkeError, HpkeKeypair, Role};
pub use measurement::{Measurement, MeasurementError};
pub use messages::{
    decode_reports, encode_reports, HpkeCiphertext, Report, ReportId, ReportMetadata, WireError,
};
pub use poplar1::Poplar1Vdaf;
pub use prio3::{
    dap_context, AggregateResult, Prio3Aggregator, Prio3Vdaf, Provisional, TaskAggregator,
    TaskVdaf, VerifyInput, VerifyState,
};
pub use secrets::{SecretError, VerifyKey, VerifyKeyAgreement, VERIFY_KEY_LEN};
pub use step_error::VdafStepError;
pub use task::{DapVersion, HpkeConfig, Task, TaskError, TaskId, TaskParams, VdafConfig};
