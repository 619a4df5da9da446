//! The Prio3 VDAFs of VDAF-08, which DAP-09's deployed clients speak, over the prio 0.16
//! line (the `prio08` dependency): 16-byte seeds, no application context, VDAF-08's
//! codepoints and Sum over Field128 with joint randomness. The same cut as VDAF-18's
//! (`split.rs`): intake finishes each output share provisionally and keeps the joint
//! randomness seed; aggregate decides from both prepare shares and that seed.
//!
//! Output shares and sums leave this module as the VDAF-18 side's [`OutputShare`] and
//! [`AggregateSum`]: Field64 and Field128 are the same fields in both drafts, encoded the
//! same way (little-endian), so the pipeline sums both drafts' shares with one type.

use prio08::codec::{Encode, ParameterizedDecode};
use prio08::field::{Field128, Field64, FieldElement};
use prio08::flp::Type;
use prio08::vdaf::prio3::{
    Prio3, Prio3Count, Prio3Histogram, Prio3InputShare, Prio3PrepareMessage, Prio3PrepareShare,
    Prio3PrepareState, Prio3PublicShare, Prio3Sum, Prio3SumVec,
};
use prio08::vdaf::xof::XofTurboShake128;
use prio08::vdaf::{AggregateShare, Aggregator, Client, Collector, PrepareTransition};

use super::split::{AggregateSum, FieldKind, OutputShare, Provisional};
use super::{AggregateResult, Measurement, Shares, VdafStepError, VerifyInput, NONCE_LEN};
use crate::dap::task::VdafConfig;

/// VDAF-08's Prio3 verify key (and seed) size.
pub const VERIFY_KEY_LEN: usize = 16;
const NUM_AGGREGATORS: u8 = 2;

type Prio3Of<T> = Prio3<T, XofTurboShake128, VERIFY_KEY_LEN>;
type State<F> = Prio3PrepareState<F, VERIFY_KEY_LEN>;

/// A prepare state of the task's shape: the decoding parameter of prepare shares and
/// messages, the same for every report of a task.
enum Template {
    F64(State<Field64>),
    F128(State<Field128>),
}

/// The two fields of VDAF-08's Prio3, each finding its own kind of template.
trait Field08: FieldElement {
    fn template(state: State<Self>) -> Template;
    fn template_of(template: &Template) -> Option<&State<Self>>;
}

impl Field08 for Field64 {
    fn template(state: State<Self>) -> Template {
        Template::F64(state)
    }
    fn template_of(template: &Template) -> Option<&State<Self>> {
        match template {
            Template::F64(state) => Some(state),
            Template::F128(_) => None,
        }
    }
}

impl Field08 for Field128 {
    fn template(state: State<Self>) -> Template {
        Template::F128(state)
    }
    fn template_of(template: &Template) -> Option<&State<Self>> {
        match template {
            Template::F128(state) => Some(state),
            Template::F64(_) => None,
        }
    }
}

/// A DAP-09 task's Prio3 instance.
#[derive(Debug, Clone)]
pub struct Prio3Vdaf08 {
    config: VdafConfig,
    instance: Instance,
}

#[derive(Debug, Clone)]
enum Instance {
    Count(Prio3Count),
    Sum(Prio3Sum),
    SumVec(Prio3SumVec),
    Histogram(Prio3Histogram),
}

macro_rules! each08 {
    ($self:expr, $v:ident => $body:expr) => {
        match &$self.instance {
            Instance::Count($v) => $body,
            Instance::Sum($v) => $body,
            Instance::SumVec($v) => $body,
            Instance::Histogram($v) => $body,
        }
    };
}

fn params(e: prio08::vdaf::VdafError) -> VdafStepError {
    VdafStepError::Params(e.to_string())
}

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

impl Prio3Vdaf08 {
    /// Builds the prio 0.16 instance; Sum and SumVec take their bit count from
    /// `max_measurement` (2^bits - 1, which task validation insists on).
    pub fn new(config: &VdafConfig) -> Result<Self, VdafStepError> {
        let bits = || {
            config
                .bits()
                .ok_or_else(|| VdafStepError::Params("no bit count".into()))
        };
        let instance = match *config {
            VdafConfig::Count => {
                Instance::Count(Prio3::new_count(NUM_AGGREGATORS).map_err(params)?)
            }
            VdafConfig::Sum { .. } => {
                Instance::Sum(Prio3::new_sum(NUM_AGGREGATORS, bits()?).map_err(params)?)
            }
            VdafConfig::SumVec {
                length,
                chunk_length,
                ..
            } => Instance::SumVec(
                Prio3::new_sum_vec(
                    NUM_AGGREGATORS,
                    bits()?,
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
            VdafConfig::MultihotCountVec { .. } => {
                return Err(VdafStepError::Params(
                    "multihot is not a VDAF-08 VDAF (DAP-09 tasks cannot use it)".into(),
                ))
            }
            VdafConfig::Poplar1 { .. } => return Err(super::not_prio3()),
        };
        Ok(Prio3Vdaf08 {
            config: config.clone(),
            instance,
        })
    }

    /// The field output shares count in: Count Field64, the others Field128.
    pub(super) fn field(&self) -> FieldKind {
        match self.instance {
            Instance::Count(_) => FieldKind::F64,
            _ => FieldKind::F128,
        }
    }

    /// Client side: splits `measurement` into a public share and two input shares.
    pub fn shard(
        &self,
        measurement: &Measurement,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Shares, VdafStepError> {
        match (&self.instance, measurement) {
            (Instance::Count(v), Measurement::Count(m)) => shard(v, m, nonce),
            (Instance::Sum(v), Measurement::Sum(m)) => shard(v, &u128::from(*m), nonce),
            (Instance::SumVec(v), Measurement::SumVec(m)) => shard(v, m, nonce),
            (Instance::Histogram(v), Measurement::Histogram(m)) => shard(v, m, nonce),
            _ => Err(VdafStepError::WrongMeasurement {
                got: measurement.kind(),
                want: self.config.name(),
            }),
        }
    }

    /// VDAF-08's prepare_init, byte in / byte out: the encoded prepare state and share.
    pub fn prepare_init(
        &self,
        verify_key: &[u8; VERIFY_KEY_LEN],
        input: &VerifyInput,
    ) -> Result<(Vec<u8>, Vec<u8>), VdafStepError> {
        each08!(self, v => {
            let (state, share) = start_typed(v, verify_key, input)?;
            Ok((encode("prepare state", &state)?, encode("prepare share", &share)?))
        })
    }

    /// Collector: combines both encoded aggregate shares into the result.
    pub fn unshard(
        &self,
        aggregate_shares: [&[u8]; 2],
        num_measurements: usize,
    ) -> Result<AggregateResult, VdafStepError> {
        each08!(self, v => unshard(v, aggregate_shares, num_measurements))
    }

    /// The encoding of a sum of no reports.
    fn empty_sum(&self) -> Result<Vec<u8>, VdafStepError> {
        each08!(self, v => {
            let sum = v
                .aggregate(&(), std::iter::empty())
                .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
            encode("aggregate share", &sum)
        })
    }
}

fn shard<T: Type>(
    v: &Prio3Of<T>,
    measurement: &T::Measurement,
    nonce: &[u8; NONCE_LEN],
) -> Result<Shares, VdafStepError> {
    let (public, inputs) = v
        .shard(measurement, nonce)
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

type Started<F> = (State<F>, Prio3PrepareShare<F, VERIFY_KEY_LEN>);

fn start_typed<T: Type>(
    v: &Prio3Of<T>,
    verify_key: &[u8; VERIFY_KEY_LEN],
    input: &VerifyInput,
) -> Result<Started<T::Field>, VdafStepError> {
    let agg_id = input.agg_id;
    if agg_id > 1 {
        return Err(VdafStepError::Params(format!(
            "aggregator id must be 0 or 1, got {agg_id}"
        )));
    }
    let public: Prio3PublicShare<VERIFY_KEY_LEN> = decode("public share", v, input.public_share)?;
    let share: Prio3InputShare<T::Field, VERIFY_KEY_LEN> =
        decode("input share", &(v, agg_id), input.input_share)?;
    v.prepare_init(verify_key, agg_id, &(), input.nonce, &public, &share)
        .map_err(|e| VdafStepError::Verify(e.to_string()))
}

fn unshard<T: Type>(
    v: &Prio3Of<T>,
    aggregate_shares: [&[u8]; 2],
    num_measurements: usize,
) -> Result<AggregateResult, VdafStepError>
where
    T::AggregateResult: Into<AggregateResult>,
{
    let shares = aggregate_shares
        .iter()
        .map(|bytes| decode::<_, AggregateShare<T::Field>>("aggregate share", &(v, &()), bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let result = v
        .unshard(&(), shares, num_measurements)
        .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
    Ok(result.into())
}

/// One aggregator of a DAP-09 task, verifying in intake's and aggregate's two halves.
pub struct Prio3Aggregator08 {
    vdaf: Prio3Vdaf08,
    agg_id: usize,
    template: Template,
    check_len: usize,
}

impl Prio3Aggregator08 {
    /// Learns the task's shapes from a made-up report, and confirms that the seed intake
    /// reads off the prepare state is the prepare message of a valid report.
    pub fn new(vdaf: &Prio3Vdaf08, agg_id: usize) -> Result<Self, VdafStepError> {
        if agg_id > 1 {
            return Err(VdafStepError::Params(format!(
                "aggregator id must be 0 or 1, got {agg_id}"
            )));
        }
        let (template, check_len) = each08!(vdaf, v => learn_shapes(vdaf, v, agg_id))?;
        Ok(Prio3Aggregator08 {
            vdaf: vdaf.clone(),
            agg_id,
            template,
            check_len,
        })
    }

    pub fn check_len(&self) -> usize {
        self.check_len
    }

    /// Intake: starts verification and finishes the output share provisionally.
    pub fn start(
        &self,
        verify_key: &[u8; VERIFY_KEY_LEN],
        input: &VerifyInput,
    ) -> Result<Provisional, VdafStepError> {
        if input.agg_id != self.agg_id {
            return Err(VdafStepError::Params(format!(
                "input of aggregator {}, but this is aggregator {}",
                input.agg_id, self.agg_id
            )));
        }
        let field = self.vdaf.field();
        each08!(self.vdaf, v => start(v, field, self.check_len, verify_key, input))
    }

    /// Aggregate: the verdict from both prepare shares (leader's first) and the seed
    /// intake kept. Err(Verify) means the report is invalid.
    pub fn decide(&self, check: &[u8], shares: [&[u8]; 2]) -> Result<(), VdafStepError> {
        each08!(self.vdaf, v => decide(v, &self.template, check, shares))
    }

    pub fn new_sum(&self) -> Result<AggregateSum, VdafStepError> {
        AggregateSum::from_encoded(self.vdaf.field(), &self.vdaf.empty_sum()?)
    }

    /// An encoded aggregate share of this task (as [`AggregateSum::encode`] wrote it);
    /// its length must be the task's.
    pub fn decode_sum(&self, bytes: &[u8]) -> Result<AggregateSum, VdafStepError> {
        let want = self.vdaf.empty_sum()?.len();
        if bytes.len() != want {
            return Err(VdafStepError::Decode {
                what: "aggregate share",
                reason: format!("{} bytes, the task's is {want}", bytes.len()),
            });
        }
        AggregateSum::from_encoded(self.vdaf.field(), bytes)
    }
}

fn learn_shapes<T: Type>(
    vdaf: &Prio3Vdaf08,
    v: &Prio3Of<T>,
    agg_id: usize,
) -> Result<(Template, usize), VdafStepError>
where
    T::Field: Field08,
{
    let measurement = match vdaf.config {
        VdafConfig::Count => Measurement::Count(false),
        VdafConfig::Sum { .. } => Measurement::Sum(0),
        VdafConfig::SumVec { length, .. } => Measurement::SumVec(vec![0; length as usize]),
        _ => Measurement::Histogram(0),
    };
    let nonce = [0u8; NONCE_LEN];
    let shares = vdaf.shard(&measurement, &nonce)?;
    let mut started = Vec::with_capacity(2);
    for (id, input_share) in shares.input_shares.iter().enumerate() {
        let input = VerifyInput {
            agg_id: id,
            nonce: &nonce,
            public_share: &shares.public_share,
            input_share,
        };
        started.push(start_typed(v, &[0; VERIFY_KEY_LEN], &input)?);
    }
    let message = v
        .prepare_shares_to_prepare_message(&(), started.iter().map(|(_, s)| s.clone()))
        .map_err(|e| VdafStepError::Verify(e.to_string()))?;
    let message = encode("prepare message", &message)?;
    let (state, _) = started.swap_remove(agg_id);
    if !encode("prepare state", &state)?.ends_with(&message) {
        return Err(VdafStepError::Params(
            "this prio version's prepare state does not end with the joint randomness seed".into(),
        ));
    }
    Ok((T::Field::template(state), message.len()))
}

fn start<T: Type>(
    v: &Prio3Of<T>,
    field: FieldKind,
    check_len: usize,
    verify_key: &[u8; VERIFY_KEY_LEN],
    input: &VerifyInput,
) -> Result<Provisional, VdafStepError> {
    let (state, share) = start_typed(v, verify_key, input)?;
    let verifier_share = encode("prepare share", &share)?;
    // The state ends with the report's joint randomness seed (checked in learn_shapes).
    let encoded = encode("prepare state", &state)?;
    let check = encoded[encoded.len().saturating_sub(check_len)..].to_vec();
    let message: Prio3PrepareMessage<VERIFY_KEY_LEN> = decode("prepare message", &state, &check)?;
    let output = match v
        .prepare_next(state, message)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?
    {
        PrepareTransition::Finish(out) => out,
        PrepareTransition::Continue(..) => {
            return Err(VdafStepError::Verify(
                "Prio3 asked for a second round (it has one)".into(),
            ))
        }
    };
    Ok(Provisional {
        verifier_share,
        check,
        output: OutputShare::from_encoded(field, &encode("output share", &output)?)?,
    })
}

fn decide<T: Type>(
    v: &Prio3Of<T>,
    template: &Template,
    check: &[u8],
    shares: [&[u8]; 2],
) -> Result<(), VdafStepError>
where
    T::Field: Field08,
{
    let template = T::Field::template_of(template)
        .ok_or_else(|| VdafStepError::Aggregate("shares of two different VDAFs".into()))?;
    let shares = shares
        .iter()
        .map(|bytes| {
            decode::<_, Prio3PrepareShare<T::Field, VERIFY_KEY_LEN>>(
                "prepare share",
                template,
                bytes,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let message = v
        .prepare_shares_to_prepare_message(&(), shares)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?;
    let kept: Prio3PrepareMessage<VERIFY_KEY_LEN> = decode("kept check", template, check)?;
    // Prio's equality on messages is constant-time.
    if message != kept {
        return Err(VdafStepError::Verify("joint randomness mismatch".into()));
    }
    Ok(())
}
