//! What a DAP aggregator sends the collector (D09 §4.6.4, D18 §4.6.7): its aggregate
//! share, sealed with HPKE to the collector under info = "dap-18 aggregate share" (or
//! "dap-09 ...") ‖ sender role ‖ 0x00 (collector) and AAD = [`AggregateShareAad`], and
//! the checksum over the report ids it aggregated. Pure functions; the stages decide
//! when to call them.

use prio::codec::{CodecError, Encode};

use super::hpke::{seal_to, wire_error, HpkeError, HpkeKeypair, Role, AGGREGATE_SHARE};
use super::messages::{encoded, put_opaque_u32, HpkeCiphertext, ReportId, WireError};
use super::task::{BatchMode, DapVersion, HpkeConfig, Task, TaskId};

const COLLECTOR_ROLE: u8 = 0x00;
/// An encoded `Interval`: start u64 | duration u64.
const INTERVAL_LEN: u16 = 16;
/// Length of a [`ReportIdChecksum`] (a SHA-256 output).
pub const REPORT_ID_CHECKSUM_LEN: usize = 32;

/// `"dap-18 aggregate share" ‖ sender ‖ 0x00` (DAP-09: "dap-09 ..."): binds the
/// ciphertext to the aggregator that sent it, so the collector cannot be handed one
/// server's share as the other's.
pub fn aggregate_share_info(version: DapVersion, sender: Role) -> Vec<u8> {
    let mut info = format!("{} aggregate share", version.label()).into_bytes();
    info.push(sender.code());
    info.push(COLLECTOR_ROLE);
    info
}

/// A window that cannot be a DAP batch interval; the values are in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    #[error("time_precision must be at least 1 second")]
    ZeroPrecision,
    #[error("window start {start} (Unix seconds) is before the Unix epoch")]
    BeforeEpoch { start: i64 },
    #[error("window {start}..{end} (Unix seconds) is empty: it must end after it starts")]
    Empty { start: i64, end: i64 },
    #[error(
        "window {bound} {secs} (Unix seconds) is not a multiple of the task's \
         time_precision of {time_precision} seconds"
    )]
    Misaligned {
        bound: &'static str,
        secs: i64,
        time_precision: u64,
    },
}

/// A D18 `Interval` of a time_interval batch: `start` and `duration` count units of the
/// task's time_precision (not seconds, as in DAP-09), half-open, as reports' times do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInterval {
    pub start: u64,
    pub duration: u64,
}

impl BatchInterval {
    /// The interval of the window `[start, end)` in Unix seconds. Refuses a window that
    /// does not fall on time_precision boundaries, since it could not hold whole units
    /// and the two servers could round it apart, and an empty one.
    pub fn from_window(start: i64, end: i64, time_precision: u64) -> Result<Self, IntervalError> {
        if time_precision == 0 {
            return Err(IntervalError::ZeroPrecision);
        }
        if end <= start {
            return Err(IntervalError::Empty { start, end });
        }
        let unit = |bound: &'static str, secs: i64| {
            let s = u64::try_from(secs).map_err(|_| IntervalError::BeforeEpoch { start })?;
            match s % time_precision {
                0 => Ok(s / time_precision),
                _ => Err(IntervalError::Misaligned {
                    bound,
                    secs,
                    time_precision,
                }),
            }
        };
        let (first, last) = (unit("start", start)?, unit("end", end)?);
        Ok(BatchInterval {
            start: first,
            duration: last - first,
        })
    }

    /// The window `[start, end)` in Unix seconds; `None` if it does not fit an i64.
    pub fn window(&self, time_precision: u64) -> Option<(i64, i64)> {
        let secs = |units: u64| {
            units
                .checked_mul(time_precision)
                .and_then(|s| i64::try_from(s).ok())
        };
        Some((
            secs(self.start)?,
            secs(self.start.checked_add(self.duration)?)?,
        ))
    }
}

/// `start u64 | duration u64`.
impl Encode for BatchInterval {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        self.start.encode(bytes)?;
        self.duration.encode(bytes)
    }
    fn encoded_len(&self) -> Option<usize> {
        Some(usize::from(INTERVAL_LEN))
    }
}

/// `AggregateShareAad`. D18: `task_id[32] | TaskConfiguration | CollectionJobReq`, where
/// `CollectionJobReq = Query{batch_mode u8 (1) | u16 len | Interval} | u32 len | agg_param
/// | u16 len | extensions (none)`. D09: `task_id[32] | u32 len | agg_param |
/// BatchSelector{query_type u8 (1) | Interval}`, the interval in seconds.
pub struct AggregateShareAad<'a> {
    pub version: DapVersion,
    pub task_id: &'a TaskId,
    /// [`Task::aad_task_binding`], as in [`super::messages::InputShareAad`].
    pub task_binding: &'a [u8],
    pub time_precision: u64,
    pub interval: BatchInterval,
    /// The VDAF aggregation parameter; empty for Prio3.
    pub agg_param: &'a [u8],
}

impl<'a> AggregateShareAad<'a> {
    /// The AAD of `task`'s aggregate share of `interval` (Prio3: no aggregation
    /// parameter); `task_binding` is the task's [`Task::aad_task_binding`].
    pub fn for_task(task: &'a Task, task_binding: &'a [u8], interval: BatchInterval) -> Self {
        AggregateShareAad {
            version: task.version(),
            task_id: task.task_id(),
            task_binding,
            time_precision: task.time_precision(),
            interval,
            agg_param: &[],
        }
    }
}

impl Encode for AggregateShareAad<'_> {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        bytes.extend_from_slice(&self.task_id.0);
        if self.version == DapVersion::Dap09 {
            put_opaque_u32(bytes, self.agg_param)?;
            BatchMode::TimeInterval.code().encode(bytes)?;
            let seconds = |units: u64| units.saturating_mul(self.time_precision);
            seconds(self.interval.start).encode(bytes)?;
            return seconds(self.interval.duration).encode(bytes);
        }
        bytes.extend_from_slice(self.task_binding);
        BatchMode::TimeInterval.code().encode(bytes)?;
        INTERVAL_LEN.encode(bytes)?;
        self.interval.encode(bytes)?;
        put_opaque_u32(bytes, self.agg_param)?;
        0u16.encode(bytes) // extensions: none
    }
}

impl AggregateShareAad<'_> {
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        encoded("aggregate share AAD", self)
    }
}

/// Seals `share` (an encoded VDAF aggregate share) from `sender` to the collector's
/// HPKE config; the ciphertext names that config's id.
pub fn seal_aggregate_share(
    collector: &HpkeConfig,
    sender: Role,
    aad: &AggregateShareAad,
    share: &[u8],
) -> Result<HpkeCiphertext, HpkeError> {
    let names = (sender.name(), AGGREGATE_SHARE);
    let info = aggregate_share_info(aad.version, sender);
    let aad = aad.to_bytes().map_err(wire_error(names))?;
    let recipient = (collector, "collector");
    seal_to(recipient, names, &info, share, &aad)
}

impl HpkeKeypair {
    /// The collector opens `sender`'s aggregate share; a ciphertext for another config id,
    /// another sender, batch, aggregation parameter or task does not open.
    pub fn open_aggregate_share(
        &self,
        sender: Role,
        ciphertext: &HpkeCiphertext,
        aad: &AggregateShareAad,
    ) -> Result<Vec<u8>, HpkeError> {
        let names = (sender.name(), AGGREGATE_SHARE);
        let info = aggregate_share_info(aad.version, sender);
        let aad = aad.to_bytes().map_err(wire_error(names))?;
        self.open_sealed(names, &info, ciphertext.into(), &aad)
    }
}

/// DAP's checksum over a batch's report ids: the XOR of SHA-256(report_id) over every
/// report. XOR makes it independent of order and lets per-batch checksums combine, so
/// the collector can see both servers aggregated the same reports without the ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportIdChecksum([u8; REPORT_ID_CHECKSUM_LEN]);

impl ReportIdChecksum {
    /// The checksum of no reports: all zeros.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checksum as read back from a sum part.
    pub fn from_bytes(bytes: [u8; REPORT_ID_CHECKSUM_LEN]) -> Self {
        ReportIdChecksum(bytes)
    }

    pub fn add(&mut self, report_id: &ReportId) {
        self.xor(&crate::crypto::sha256(&report_id.0));
    }

    /// Adds every report of `other` (the checksum of the union of two disjoint sets).
    pub fn combine(&mut self, other: &ReportIdChecksum) {
        self.xor(&other.0);
    }

    pub fn as_bytes(&self) -> &[u8; REPORT_ID_CHECKSUM_LEN] {
        &self.0
    }

    fn xor(&mut self, bytes: &[u8; REPORT_ID_CHECKSUM_LEN]) {
        for (mine, theirs) in self.0.iter_mut().zip(bytes) {
            *mine ^= theirs;
        }
    }
}

#[cfg(test)]
#[path = "aggregate_share_tests.rs"]
mod tests;
