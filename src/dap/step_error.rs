//! Why a step of a DAP task's VDAF (Prio3 or Poplar1) failed, one error for both.

/// Why a VDAF step failed. `Verify` is the verdict "this report is invalid".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VdafStepError {
    #[error("VDAF parameters: {0}")]
    Params(String),
    #[error("measurement is a {got} measurement, but the task's VDAF is {want}")]
    WrongMeasurement {
        got: &'static str,
        want: &'static str,
    },
    #[error("sharding the measurement: {0}")]
    Shard(String),
    #[error("{what} does not decode: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("aggregating: {0}")]
    Aggregate(String),
}
