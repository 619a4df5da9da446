//! The Prio3 VDAFs of a DAP task, byte in / byte out. This file is VDAF-18 over prio
//! 0.18.1: one enum picks the prio instance from a [`VdafConfig`], and each step is
//! written once, generic over the instance. `vdaf08` is VDAF-08 (DAP-09's) over the prio
//! 0.16 line, and `by_version` picks between the two for a task, which is what the
//! pipeline uses. Shares, verifier states and messages cross this API encoded, the form
//! in which they travel and are stored, so callers never name prio's types.

use prio::codec::{Encode, ParameterizedDecode};
use prio::flp::Type;
use prio::vdaf::prio3::{
    Prio3, Prio3Count, Prio3Histogram, Prio3InputShare, Prio3MultihotCountVec, Prio3PublicShare,
    Prio3Sum, Prio3SumVec, Prio3VerifierMessage, Prio3VerifierShare, Prio3VerifyState,
};
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::{
    Aggregatable, AggregateShare, Aggregator, Client, Collector, OutputShare as PrioOutputShare,
    VerifyTransition,
};

pub use super::measurement::Measurement;
pub use super::step_error::VdafStepError;
use super::task::{TaskId, VdafConfig};
pub use by_version::{TaskAggregator, TaskVdaf};
pub use split::{AggregateSum, OutputShare, Prio3Aggregator, Provisional};
pub use vdaf08::{Prio3Aggregator08, Prio3Vdaf08};

/// Prio3's verify key size in VDAF-18 (32 bytes; it was 16 in VDAF-08).
pub const VERIFY_KEY_LEN: usize = 32;
/// The nonce is the report id.
pub const NONCE_LEN: usize = 16;
/// DAP always has two aggregators.
const NUM_AGGREGATORS: u8 = 2;

/// The VDAF application context of a DAP-18 task: "dap-18" ‖ task_id (38 bytes).
pub fn dap_context(task_id: &TaskId) -> Vec<u8> {
    let mut ctx = b"dap-18".to_vec();
    ctx.extend_from_slice(&task_id.0);
    ctx
}

/// The collector's result: one integer (count, sum) or one per position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateResult {
    Integer(u128),
    Vector(Vec<u128>),
}

impl From<u64> for AggregateResult {
    fn from(n: u64) -> Self {
        AggregateResult::Integer(n.into())
    }
}

impl From<u128> for AggregateResult {
    fn from(n: u128) -> Self {
        AggregateResult::Integer(n)
    }
}

impl From<Vec<u128>> for AggregateResult {
    fn from(v: Vec<u128>) -> Self {
        AggregateResult::Vector(v)
    }
}

impl AggregateResult {
    /// JSON: an integer or an array of integers. Values above 2^64-1 (not reachable with
    /// realistic batches) are written as decimal strings, as JSON numbers lose them.
    pub fn to_json(&self) -> serde_json::Value {
        fn num(n: u128) -> serde_json::Value {
            match u64::try_from(n) {
                Ok(n) => n.into(),
                Err(_) => n.to_string().into(),
            }
        }
        match self {
            AggregateResult::Integer(n) => num(*n),
            AggregateResult::Vector(v) => v.iter().map(|&n| num(n)).collect(),
        }
    }
}

/// A public share and the two input shares (leader's first), encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shares {
    pub public_share: Vec<u8>,
    pub input_shares: [Vec<u8>; 2],
}

/// What one aggregator verifies: its id (0 leader, 1 helper), the report id as nonce,
/// the report's public share and its own (opened) input share, all encoded.
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    pub agg_id: usize,
    pub nonce: &'a [u8; NONCE_LEN],
    pub public_share: &'a [u8],
    pub input_share: &'a [u8],
}

/// One aggregator's verification state between `verify_init` and `verify_next`, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyState {
    pub agg_id: usize,
    pub encoded: Vec<u8>,
}

/// A task's Prio3 instance.
#[derive(Debug, Clone)]
pub struct Prio3Vdaf {
    config: VdafConfig,
    instance: Instance,
}

#[derive(Debug, Clone)]
enum Instance {
    Count(Prio3Count),
    Sum(Prio3Sum),
    SumVec(Prio3SumVec),
    Histogram(Prio3Histogram),
    Multihot(Prio3MultihotCountVec),
}

/// Poplar1 is a VDAF of a DAP task but not a Prio3 one: its steps are `dap::poplar1`'s.
pub(crate) fn not_prio3() -> VdafStepError {
    VdafStepError::Params("poplar1 is not a Prio3 VDAF: its reports are verified in passes the portal asks for (divvi collect --heavy-hitters, divvi passes)".into())
}

/// Runs `$body` with `$v` bound to the prio instance, whichever variant it is.
macro_rules! each {
    ($self:expr, $v:ident => $body:expr) => {
        match &$self.instance {
            Instance::Count($v) => $body,
            Instance::Sum($v) => $body,
            Instance::SumVec($v) => $body,
            Instance::Histogram($v) => $body,
            Instance::Multihot($v) => $body,
        }
    };
}

impl Prio3Vdaf {
    /// Builds the prio instance for two aggregators.
    pub fn new(config: &VdafConfig) -> Result<Self, VdafStepError> {
        let usize_of = |n: u64| {
            usize::try_from(n).map_err(|_| VdafStepError::Params(format!("{n} is too large")))
        };
        let params = |e: prio::vdaf::VdafError| VdafStepError::Params(e.to_string());
        let instance = match *config {
            VdafConfig::Count => {
                Instance::Count(Prio3::new_count(NUM_AGGREGATORS).map_err(params)?)
            }
            VdafConfig::Sum { max_measurement } => {
                Instance::Sum(Prio3::new_sum(NUM_AGGREGATORS, max_measurement).map_err(params)?)
            }
            VdafConfig::SumVec {
                length,
                max_measurement,
                chunk_length,
            } => Instance::SumVec(
                Prio3::new_sum_vec(
                    NUM_AGGREGATORS,
                    max_measurement.into(),
                    length as usize,
                    chunk_length as usize,
                )
                .map_err(params)?,
            ),
            VdafConfig::Histogram {
                length,
                chunk_length,
            } => Instance::Histogram(
                Prio3::new_histogram(NUM_AGGREGATORS, length as usize, chunk_length as usize)
                    .map_err(params)?,
            ),
            VdafConfig::MultihotCountVec {
                length,
                max_weight,
                chunk_length,
            } => Instance::Multihot(
                Prio3::new_multihot_count_vec(
                    NUM_AGGREGATORS,
                    length as usize,
                    usize_of(max_weight)?,
                    chunk_length as usize,
                )
                .map_err(params)?,
            ),
            VdafConfig::Poplar1 { .. } => return Err(not_prio3()),
        };
        Ok(Prio3Vdaf {
            config: config.clone(),
            instance,
        })
    }

    pub fn config(&self) -> &VdafConfig {
        &self.config
    }

    /// Client side: splits `measurement` into a public share and two input shares.
    /// `nonce` is the report id; sharding randomness comes from the OS inside prio.
    pub fn shard(
        &self,
        ctx: &[u8],
        measurement: &Measurement,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Shares, VdafStepError> {
        match (&self.instance, measurement) {
            (Instance::Count(v), Measurement::Count(m)) => shard(v, ctx, m, nonce),
            (Instance::Sum(v), Measurement::Sum(m)) => shard(v, ctx, m, nonce),
            (Instance::SumVec(v), Measurement::SumVec(m)) => shard(v, ctx, m, nonce),
            (Instance::Histogram(v), Measurement::Histogram(m)) => shard(v, ctx, m, nonce),
            (Instance::Multihot(v), Measurement::Multihot(m)) => shard(v, ctx, m, nonce),
            _ => Err(VdafStepError::WrongMeasurement {
                got: measurement.kind(),
                want: self.config.name(),
            }),
        }
    }

    /// The length of an aggregator's encoded verify state, the same for every report of
    /// the task. Found by verifying one made-up report, since prio does not state it.
    pub fn verify_state_len(&self, agg_id: usize) -> Result<usize, VdafStepError> {
        let (nonce, shares) = self.made_up_report()?;
        let input_share = shares.input_shares.get(agg_id).ok_or_else(|| {
            VdafStepError::Params(format!("aggregator id must be 0 or 1, got {agg_id}"))
        })?;
        let input = VerifyInput {
            agg_id,
            nonce: &nonce,
            public_share: &shares.public_share,
            input_share,
        };
        let (state, _) = self.verify_init(&[0u8; VERIFY_KEY_LEN], b"", &input)?;
        Ok(state.encoded.len())
    }

    /// A report of a zero measurement (nonce all zero), for learning the sizes and shapes
    /// prio does not state.
    fn made_up_report(&self) -> Result<([u8; NONCE_LEN], Shares), VdafStepError> {
        let measurement = match self.config {
            VdafConfig::Count => Measurement::Count(false),
            VdafConfig::Sum { .. } => Measurement::Sum(0),
            VdafConfig::SumVec { length, .. } => Measurement::SumVec(vec![0; length as usize]),
            VdafConfig::Histogram { .. } => Measurement::Histogram(0),
            VdafConfig::MultihotCountVec { length, .. } => {
                Measurement::Multihot(vec![false; length as usize])
            }
            VdafConfig::Poplar1 { .. } => return Err(not_prio3()),
        };
        let nonce = [0u8; NONCE_LEN];
        Ok((nonce, self.shard(b"", &measurement, &nonce)?))
    }

    /// An aggregator starts verifying its input share; returns its state and its encoded
    /// verifier share for the peer.
    pub fn verify_init(
        &self,
        verify_key: &[u8; VERIFY_KEY_LEN],
        ctx: &[u8],
        input: &VerifyInput,
    ) -> Result<(VerifyState, Vec<u8>), VdafStepError> {
        each!(self, v => verify_init(v, verify_key, ctx, input))
    }

    /// Combines both aggregators' verifier shares (leader's first) into the verifier
    /// message. Fails when the proof does not check out: the report is invalid.
    pub fn verifier_shares_to_message(
        &self,
        ctx: &[u8],
        state: &VerifyState,
        shares: [&[u8]; 2],
    ) -> Result<Vec<u8>, VdafStepError> {
        each!(self, v => shares_to_message(v, ctx, state, shares))
    }

    /// Finishes verification with the message; returns the encoded output share.
    pub fn verify_next(
        &self,
        ctx: &[u8],
        state: &VerifyState,
        message: &[u8],
    ) -> Result<Vec<u8>, VdafStepError> {
        each!(self, v => verify_next(v, ctx, state, message))
    }

    /// Sums encoded output shares into an encoded aggregate share.
    pub fn aggregate<'a>(
        &self,
        output_shares: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<u8>, VdafStepError> {
        each!(self, v => aggregate(v, output_shares))
    }

    /// Adds two encoded aggregate shares (of disjoint sets of reports) into one.
    pub fn merge_aggregate_shares(&self, a: &[u8], b: &[u8]) -> Result<Vec<u8>, VdafStepError> {
        each!(self, v => merge(v, a, b))
    }

    /// Collector: combines both encoded aggregate shares into the result.
    pub fn unshard(
        &self,
        aggregate_shares: [&[u8]; 2],
        num_measurements: usize,
    ) -> Result<AggregateResult, VdafStepError> {
        each!(self, v => unshard(v, aggregate_shares, num_measurements))
    }
}

/// Every Prio3 variant of a DAP-18 task: some FLP type `T` over TurboSHAKE128 with
/// 32-byte seeds. The steps below are written once over `T`.
type Prio3Of<T> = Prio3<T, XofTurboShake128, VERIFY_KEY_LEN>;

fn encode<T: Encode>(what: &'static str, value: &T) -> Result<Vec<u8>, VdafStepError> {
    value.get_encoded().map_err(|e| VdafStepError::Decode {
        what,
        reason: format!("encoding failed: {e}"),
    })
}

fn decode<P, T: ParameterizedDecode<P>>(
    what: &'static str,
    param: &P,
    bytes: &[u8],
) -> Result<T, VdafStepError> {
    T::get_decoded_with_param(param, bytes).map_err(|e| VdafStepError::Decode {
        what,
        reason: e.to_string(),
    })
}

fn shard<T: Type>(
    vdaf: &Prio3Of<T>,
    ctx: &[u8],
    measurement: &T::Measurement,
    nonce: &[u8; NONCE_LEN],
) -> Result<Shares, VdafStepError> {
    let (public, inputs) = vdaf
        .shard(ctx, measurement, nonce)
        .map_err(|e| VdafStepError::Shard(e.to_string()))?;
    let [leader, helper]: [Prio3InputShare<T::Field, VERIFY_KEY_LEN>; 2] = inputs
        .try_into()
        .map_err(|_| VdafStepError::Shard("prio made other than two input shares".into()))?;
    Ok(Shares {
        public_share: encode("public share", &public)?,
        input_shares: [
            encode("leader input share", &leader)?,
            encode("helper input share", &helper)?,
        ],
    })
}

fn decode_state<T: Type>(
    vdaf: &Prio3Of<T>,
    state: &VerifyState,
) -> Result<Prio3VerifyState<T::Field, VERIFY_KEY_LEN>, VdafStepError> {
    decode("verify state", &(vdaf, state.agg_id), &state.encoded)
}

/// An aggregator's verify state and verifier share, as prio's types.
type Started<F> = (
    Prio3VerifyState<F, VERIFY_KEY_LEN>,
    Prio3VerifierShare<F, VERIFY_KEY_LEN>,
);

/// Decodes the report's public share and this aggregator's input share, and starts
/// verifying: the one place prio's `verify_init` is called.
fn start_typed<T: Type>(
    vdaf: &Prio3Of<T>,
    verify_key: &[u8; VERIFY_KEY_LEN],
    ctx: &[u8],
    input: &VerifyInput,
) -> Result<Started<T::Field>, VdafStepError> {
    let agg_id = input.agg_id;
    if agg_id > 1 {
        return Err(VdafStepError::Params(format!(
            "aggregator id must be 0 or 1, got {agg_id}"
        )));
    }
    let public: Prio3PublicShare<VERIFY_KEY_LEN> =
        decode("public share", vdaf, input.public_share)?;
    let share: Prio3InputShare<T::Field, VERIFY_KEY_LEN> =
        decode("input share", &(vdaf, agg_id), input.input_share)?;
    vdaf.verify_init(verify_key, ctx, agg_id, &(), input.nonce, &public, &share)
        .map_err(|e| VdafStepError::Verify(e.to_string()))
}

fn verify_init<T: Type>(
    vdaf: &Prio3Of<T>,
    verify_key: &[u8; VERIFY_KEY_LEN],
    ctx: &[u8],
    input: &VerifyInput,
) -> Result<(VerifyState, Vec<u8>), VdafStepError> {
    let (state, share) = start_typed(vdaf, verify_key, ctx, input)?;
    Ok((
        VerifyState {
            agg_id: input.agg_id,
            encoded: encode("verify state", &state)?,
        },
        encode("verifier share", &share)?,
    ))
}

fn shares_to_message<T: Type>(
    vdaf: &Prio3Of<T>,
    ctx: &[u8],
    state: &VerifyState,
    shares: [&[u8]; 2],
) -> Result<Vec<u8>, VdafStepError> {
    let state = decode_state(vdaf, state)?;
    let shares = shares
        .iter()
        .map(|bytes| {
            decode::<_, Prio3VerifierShare<T::Field, VERIFY_KEY_LEN>>(
                "verifier share",
                &state,
                bytes,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let message = vdaf
        .verifier_shares_to_message(ctx, &(), shares)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?;
    encode("verifier message", &message)
}

fn verify_next<T: Type>(
    vdaf: &Prio3Of<T>,
    ctx: &[u8],
    state: &VerifyState,
    message: &[u8],
) -> Result<Vec<u8>, VdafStepError> {
    let state = decode_state(vdaf, state)?;
    let message: Prio3VerifierMessage<VERIFY_KEY_LEN> =
        decode("verifier message", &state, message)?;
    match vdaf
        .verify_next(ctx, state, message)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?
    {
        VerifyTransition::Finish(out) => encode("output share", &out),
        VerifyTransition::Continue(..) => Err(VdafStepError::Verify(
            "Prio3 asked for a second round (it has one)".into(),
        )),
    }
}

fn aggregate<'a, T: Type>(
    vdaf: &Prio3Of<T>,
    output_shares: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, VdafStepError> {
    let mut sum = vdaf.aggregate_init(&());
    for bytes in output_shares {
        let out: PrioOutputShare<T::Field> = decode("output share", &(vdaf, &()), bytes)?;
        sum.accumulate(&out)
            .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
    }
    encode("aggregate share", &sum)
}

fn merge<T: Type>(vdaf: &Prio3Of<T>, a: &[u8], b: &[u8]) -> Result<Vec<u8>, VdafStepError> {
    let mut sum: AggregateShare<T::Field> = decode("aggregate share", &(vdaf, &()), a)?;
    let other: AggregateShare<T::Field> = decode("aggregate share", &(vdaf, &()), b)?;
    sum.merge(&other)
        .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
    encode("aggregate share", &sum)
}

fn unshard<T: Type>(
    vdaf: &Prio3Of<T>,
    aggregate_shares: [&[u8]; 2],
    num_measurements: usize,
) -> Result<AggregateResult, VdafStepError>
where
    T::AggregateResult: Into<AggregateResult>,
{
    let shares = aggregate_shares
        .iter()
        .map(|bytes| decode::<_, AggregateShare<T::Field>>("aggregate share", &(vdaf, &()), bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let result = vdaf
        .unshard(&(), shares, num_measurements)
        .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
    Ok(result.into())
}

mod by_version;
mod split;
mod vdaf08;
