//! The DAP client: measurement in, sealed report out (D18 §4.4.2, or D09 §4.4.2 for a
//! DAP-09 task). No network: the caller uploads the reports (a DAP-18 `UploadRequest`
//! body is [`super::encode_reports`]; DAP-09 takes one report per request).

use super::hpke::{seal_input_share, HpkeError, Role};
use super::measurement::Measurement;
use super::messages::{InputShareAad, Report, ReportId, ReportMetadata, WireError};
use super::poplar1::Poplar1Vdaf;
use super::prio3::{Shares, TaskVdaf, VdafStepError, NONCE_LEN};
use super::task::{Task, TaskError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("task {task_id}: {source}")]
    Task { task_id: String, source: TaskError },
    #[error(transparent)]
    Vdaf(#[from] VdafStepError),
    #[error(transparent)]
    Hpke(#[from] HpkeError),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Makes reports for one task.
///
/// ```
/// use divvi::dap::task::BatchMode;
/// use divvi::dap::{decode_reports, encode_reports, DapClient, HpkeKeypair, Measurement};
/// use divvi::dap::{Task, TaskId, TaskParams, VdafConfig};
///
/// // The task as published by the aggregators (here with throwaway keys).
/// let config = |id| HpkeKeypair::generate(id).map(|k| k.config().clone());
/// let task = Task::new(TaskParams {
///     dap_version: Default::default(), // DAP-18
///     task_id: TaskId::random()?,
///     task_info: b"page load times".to_vec(),
///     leader_aggregator_endpoint: "https://leader.example/".into(),
///     helper_aggregator_endpoint: "https://helper.example/".into(),
///     time_precision: 3600,
///     min_batch_size: 100,
///     batch_mode: BatchMode::TimeInterval,
///     vdaf: VdafConfig::from_spec("histogram:8")?,
///     leader_hpke_config: config(1)?,
///     helper_hpke_config: config(2)?,
///     collector_hpke_config: config(3)?,
///     dp: None,
/// })?;
///
/// let client = DapClient::new(&task)?;
/// let report = client.report(&Measurement::Histogram(5), 1_700_000_000)?;
/// assert_eq!(report.metadata.time, 1_700_000_000 / 3600);
///
/// // POST this to {leader}/tasks/{task id}/reports as application/ppm-dap;message=upload-req.
/// let body = encode_reports(task.version(), &[report])?;
/// assert_eq!(decode_reports(task.version(), &body)?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DapClient {
    task: Task,
    vdaf: Sharder,
    task_binding: Vec<u8>,
}

/// What splits a measurement for the task's VDAF.
enum Sharder {
    Prio3(TaskVdaf),
    Poplar1(Poplar1Vdaf),
}

impl Sharder {
    fn new(task: &Task) -> Result<Self, VdafStepError> {
        Ok(match task.vdaf() {
            super::task::VdafConfig::Poplar1 { .. } => Sharder::Poplar1(Poplar1Vdaf::new(task)?),
            _ => Sharder::Prio3(TaskVdaf::new(task)?),
        })
    }

    fn shard(
        &self,
        measurement: &Measurement,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Shares, VdafStepError> {
        match (self, measurement) {
            (Sharder::Prio3(vdaf), _) => vdaf.shard(measurement, nonce),
            (Sharder::Poplar1(vdaf), Measurement::String(string)) => vdaf.shard(string, nonce),
            (Sharder::Poplar1(_), other) => Err(VdafStepError::WrongMeasurement {
                got: other.kind(),
                want: "poplar1",
            }),
        }
    }
}

impl DapClient {
    /// Prepares the task's VDAF (in its DAP version's draft) and the bytes every report's
    /// AAD binds to (DAP-18: the TaskConfiguration).
    pub fn new(task: &Task) -> Result<Self, ClientError> {
        Ok(DapClient {
            task: task.clone(),
            vdaf: Sharder::new(task)?,
            task_binding: task.aad_task_binding(),
        })
    }

    pub fn task(&self) -> &Task {
        &self.task
    }

    /// One report of `measurement` taken at `unix_seconds`: a fresh random report id, the
    /// time truncated to the time_precision (DAP-18 in units, DAP-09 in seconds), the
    /// measurement sharded, the leader's share sealed to the leader's HPKE config and the
    /// helper's to the helper's.
    pub fn report(
        &self,
        measurement: &Measurement,
        unix_seconds: u64,
    ) -> Result<Report, ClientError> {
        let report_id = ReportId::random()?;
        let metadata = ReportMetadata {
            report_id,
            time: self.task.report_time(unix_seconds),
        };
        let shares = self.vdaf.shard(measurement, &report_id.0)?;
        let aad = InputShareAad {
            version: self.task.version(),
            task_id: self.task.task_id(),
            task_binding: &self.task_binding,
            metadata: &metadata,
            public_share: &shares.public_share,
        };
        let params = self.task.params();
        let [leader_share, helper_share] = &shares.input_shares;
        let leader =
            seal_input_share(&params.leader_hpke_config, Role::Leader, leader_share, &aad)?;
        let helper =
            seal_input_share(&params.helper_hpke_config, Role::Helper, helper_share, &aad)?;
        Ok(Report {
            metadata,
            public_share: shares.public_share,
            leader_encrypted_input_share: leader,
            helper_encrypted_input_share: helper,
        })
    }
}
