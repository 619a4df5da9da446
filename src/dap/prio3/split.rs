//! Prio3 verification cut where the batch pipeline cuts it. Intake has the report's
//! whole share in hand, so it finishes the output share there, provisionally, and keeps
//! only the joint randomness seed the report must agree on (32 bytes, or none). Aggregate
//! then decides a report from both verifier shares and that seed: it never decodes a
//! verify state (32 KiB for a histogram-2048 leader) nor expands a helper's seed.
//!
//! Why this is the same verdict as prio's `verify_next`: that step checks the message's
//! joint randomness seed against the state's, then returns the output share it would
//! return for any message that passes. Intake derives that seed as VDAF-18 defines it,
//! from the report's two joint randomness parts (its own, which its verifier share ends
//! with, and the peer's from the public share), rather than encoding the whole state to
//! read the seed off its end (2,048 field elements for a histogram-2048 leader).
//! [`Prio3Aggregator::new`] confirms on a made-up report, for every task, that the
//! derived seed is the one the state holds.

use super::{
    decode, encode, start_typed, Instance, Prio3Of, Prio3Vdaf, VdafStepError, VerifyInput,
    VERIFY_KEY_LEN,
};
use prio::field::{Field128, Field64, NttFriendlyFieldElement};
use prio::flp::Type;
use prio::vdaf::prio3::{Prio3VerifierMessage, Prio3VerifierShare, Prio3VerifyState};
use prio::vdaf::xof::{Xof, XofTurboShake128};
use prio::vdaf::{Aggregatable, AggregateShare, Aggregator, Vdaf, VerifyTransition};

type State<F> = Prio3VerifyState<F, VERIFY_KEY_LEN>;
type PrioOutput<F> = prio::vdaf::OutputShare<F>;

/// A value in whichever of the two fields DAP's Prio3 VDAFs use: Count and Sum count in
/// Field64, the vector VDAFs in Field128.
#[derive(Clone)]
enum ByField<A, B> {
    F64(A),
    F128(B),
}

/// Which of the two fields a VDAF counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldKind {
    F64,
    F128,
}

/// Field elements from their encoding (little-endian, the same in VDAF-08 and -18).
fn elements<F: NttFriendlyFieldElement>(bytes: &[u8]) -> Result<Vec<F>, VdafStepError> {
    let size = F::ENCODED_SIZE;
    if bytes.len() % size != 0 {
        return Err(VdafStepError::Decode {
            what: "field elements",
            reason: format!(
                "{} bytes is not a whole number of {size}-byte elements",
                bytes.len()
            ),
        });
    }
    bytes
        .chunks_exact(size)
        .map(|chunk| {
            F::get_decoded(chunk).map_err(|e| VdafStepError::Decode {
                what: "field element",
                reason: e.to_string(),
            })
        })
        .collect()
}

/// A report's output share, kept as field elements: summing it costs no decoding.
pub struct OutputShare(ByField<PrioOutput<Field64>, PrioOutput<Field128>>);

impl OutputShare {
    /// An output share from its encoding in `field` (VDAF-08's, made by prio 0.16).
    pub(super) fn from_encoded(field: FieldKind, bytes: &[u8]) -> Result<Self, VdafStepError> {
        Ok(OutputShare(match field {
            FieldKind::F64 => ByField::F64(PrioOutput::from(elements::<Field64>(bytes)?)),
            FieldKind::F128 => ByField::F128(PrioOutput::from(elements::<Field128>(bytes)?)),
        }))
    }
}

/// A sum of output shares (an aggregate share in the making), as field elements.
#[derive(Clone)]
pub struct AggregateSum(ByField<AggregateShare<Field64>, AggregateShare<Field128>>);

/// A verify state of the task's shape: what decoding a verifier share or message needs
/// to know (how many verifiers, whether there is joint randomness), the same for every
/// report of a task.
struct Template(ByField<State<Field64>, State<Field128>>);

/// The two fields, each wrapped into the kinds above.
trait DapField: NttFriendlyFieldElement {
    fn output(share: PrioOutput<Self>) -> OutputShare;
    fn sum(share: AggregateShare<Self>) -> AggregateSum;
    fn template(state: State<Self>) -> Template;
    fn template_of(template: &Template) -> Option<&State<Self>>;
}

macro_rules! dap_field {
    ($field:ty, $variant:ident) => {
        impl DapField for $field {
            fn output(share: PrioOutput<Self>) -> OutputShare {
                OutputShare(ByField::$variant(share))
            }
            fn sum(share: AggregateShare<Self>) -> AggregateSum {
                AggregateSum(ByField::$variant(share))
            }
            fn template(state: State<Self>) -> Template {
                Template(ByField::$variant(state))
            }
            fn template_of(template: &Template) -> Option<&State<Self>> {
                match &template.0 {
                    ByField::$variant(state) => Some(state),
                    _ => None,
                }
            }
        }
    };
}
dap_field!(Field64, F64);
dap_field!(Field128, F128);

fn aggregating(e: prio::vdaf::VdafError) -> VdafStepError {
    VdafStepError::Aggregate(e.to_string())
}

fn other_field() -> VdafStepError {
    VdafStepError::Aggregate("shares of two different VDAFs".into())
}

impl AggregateSum {
    /// A sum from its encoding in `field` (VDAF-08's, made by prio 0.16).
    pub(super) fn from_encoded(field: FieldKind, bytes: &[u8]) -> Result<Self, VdafStepError> {
        Ok(AggregateSum(match field {
            FieldKind::F64 => ByField::F64(AggregateShare::from(elements::<Field64>(bytes)?)),
            FieldKind::F128 => ByField::F128(AggregateShare::from(elements::<Field128>(bytes)?)),
        }))
    }

    /// Adds one report's output share.
    pub fn add(&mut self, share: &OutputShare) -> Result<(), VdafStepError> {
        match (&mut self.0, &share.0) {
            (ByField::F64(sum), ByField::F64(out)) => sum.accumulate(out),
            (ByField::F128(sum), ByField::F128(out)) => sum.accumulate(out),
            _ => return Err(other_field()),
        }
        .map_err(aggregating)
    }

    /// Adds the sum of other reports.
    pub fn merge(&mut self, other: &AggregateSum) -> Result<(), VdafStepError> {
        match (&mut self.0, &other.0) {
            (ByField::F64(sum), ByField::F64(more)) => sum.merge(more),
            (ByField::F128(sum), ByField::F128(more)) => sum.merge(more),
            _ => return Err(other_field()),
        }
        .map_err(aggregating)
    }

    /// Takes away the sum of reports that were added but must not count.
    pub fn subtract(&mut self, other: &AggregateSum) -> Result<(), VdafStepError> {
        fn negated<F: NttFriendlyFieldElement>(share: &AggregateShare<F>) -> AggregateShare<F> {
            AggregateShare::from(share.as_ref().iter().map(|x| -*x).collect::<Vec<F>>())
        }
        match (&mut self.0, &other.0) {
            (ByField::F64(sum), ByField::F64(less)) => sum.merge(&negated(less)),
            (ByField::F128(sum), ByField::F128(less)) => sum.merge(&negated(less)),
            _ => return Err(other_field()),
        }
        .map_err(aggregating)
    }

    /// Adds `noise[i]` to value i (differential privacy): a negative value is the field's
    /// negative, which [`AggregateSum::signed_values`] reads back as such.
    pub fn add_noise(&mut self, noise: &[i64]) -> Result<(), VdafStepError> {
        fn noisy<F: NttFriendlyFieldElement>(
            sum: &mut AggregateShare<F>,
            noise: &[i64],
        ) -> Result<(), VdafStepError> {
            let values: Vec<F> = sum.as_ref().to_vec();
            if values.len() != noise.len() {
                return Err(VdafStepError::Aggregate(format!(
                    "{} noise values for {} values",
                    noise.len(),
                    values.len()
                )));
            }
            let noisy = values.iter().zip(noise).map(|(&value, &n)| {
                let magnitude = F::from(F::Integer::try_from(n.unsigned_abs() as usize).ok()?);
                Some(if n < 0 {
                    value - magnitude
                } else {
                    value + magnitude
                })
            });
            let noisy: Option<Vec<F>> = noisy.collect();
            let noisy = noisy
                .ok_or_else(|| VdafStepError::Aggregate("a noise value beyond the field".into()))?;
            *sum = AggregateShare::from(noisy);
            Ok(())
        }
        match &mut self.0 {
            ByField::F64(sum) => noisy(sum, noise),
            ByField::F128(sum) => noisy(sum, noise),
        }
    }

    /// How many values the share holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            ByField::F64(sum) => sum.as_ref().len(),
            ByField::F128(sum) => sum.as_ref().len(),
        }
    }

    /// Whether the share holds no value (no VDAF's does).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as signed numbers: an element above half the field is the negative it
    /// stands for (DP noise can take a count below zero). For the Prio3 VDAFs divvi runs,
    /// the sum of both aggregate shares is the result itself, value by value.
    pub fn signed_values(&self) -> Vec<i128> {
        fn signed<F: NttFriendlyFieldElement>(sum: &AggregateShare<F>) -> Vec<i128>
        where
            u128: From<F::Integer>,
        {
            let p = u128::from(F::modulus());
            sum.as_ref()
                .iter()
                .map(|&x| {
                    let v = u128::from(F::Integer::from(x));
                    match v > p / 2 {
                        true => -((p - v) as i128),
                        false => v as i128,
                    }
                })
                .collect()
        }
        match &self.0 {
            ByField::F64(sum) => signed(sum),
            ByField::F128(sum) => signed(sum),
        }
    }

    /// The encoded aggregate share, as the collector reads it.
    pub fn encode(&self) -> Result<Vec<u8>, VdafStepError> {
        match &self.0 {
            ByField::F64(sum) => encode("aggregate share", sum),
            ByField::F128(sum) => encode("aggregate share", sum),
        }
    }
}

/// What intake learns of one report: its verifier share for the peer, the seed the
/// verifier message must equal (`check`, empty for a VDAF without joint randomness), and
/// the output share the report has if the decision goes its way.
pub struct Provisional {
    pub verifier_share: Vec<u8>,
    pub check: Vec<u8>,
    pub output: OutputShare,
}

/// One aggregator of a task, verifying in intake's and aggregate's two halves.
pub struct Prio3Aggregator {
    vdaf: Prio3Vdaf,
    agg_id: usize,
    template: Template,
    check_len: usize,
}

impl Prio3Aggregator {
    /// Learns the task's shapes from a made-up report, and confirms that the joint
    /// randomness seed intake derives is the verifier message a valid report gives.
    pub fn new(vdaf: &Prio3Vdaf, agg_id: usize) -> Result<Self, VdafStepError> {
        if agg_id > 1 {
            return Err(VdafStepError::Params(format!(
                "aggregator id must be 0 or 1, got {agg_id}"
            )));
        }
        let (template, check_len) = each!(vdaf, v => learn_shapes(vdaf, v, agg_id))?;
        Ok(Prio3Aggregator {
            vdaf: vdaf.clone(),
            agg_id,
            template,
            check_len,
        })
    }

    /// Bytes of `check` per report: 32, or 0 without joint randomness (Count).
    pub fn check_len(&self) -> usize {
        self.check_len
    }

    /// Intake: starts verification and finishes the output share provisionally.
    pub fn start(
        &self,
        verify_key: &[u8; VERIFY_KEY_LEN],
        ctx: &[u8],
        input: &VerifyInput,
    ) -> Result<Provisional, VdafStepError> {
        if input.agg_id != self.agg_id {
            return Err(VdafStepError::Params(format!(
                "input of aggregator {}, but this is aggregator {}",
                input.agg_id, self.agg_id
            )));
        }
        each!(self.vdaf, v => start(v, self.check_len, verify_key, ctx, input))
    }

    /// Aggregate: the verdict from both verifier shares (leader's first) and the check
    /// intake kept. Err(Verify) means the report is invalid.
    pub fn decide(
        &self,
        ctx: &[u8],
        check: &[u8],
        shares: [&[u8]; 2],
    ) -> Result<(), VdafStepError> {
        each!(self.vdaf, v => decide(v, &self.template, ctx, check, shares))
    }

    /// A sum of no reports.
    pub fn new_sum(&self) -> AggregateSum {
        each!(self.vdaf, v => empty_sum(v))
    }

    /// An encoded aggregate share of this task, as [`AggregateSum::encode`] wrote it.
    pub fn decode_sum(&self, bytes: &[u8]) -> Result<AggregateSum, VdafStepError> {
        each!(self.vdaf, v => decode_sum(v, bytes))
    }
}

fn learn_shapes<T: Type>(
    vdaf: &Prio3Vdaf,
    v: &Prio3Of<T>,
    agg_id: usize,
) -> Result<(Template, usize), VdafStepError>
where
    T::Field: DapField,
{
    let (nonce, shares) = vdaf.made_up_report()?;
    let mut started = Vec::with_capacity(2);
    for (id, input_share) in shares.input_shares.iter().enumerate() {
        let input = VerifyInput {
            agg_id: id,
            nonce: &nonce,
            public_share: &shares.public_share,
            input_share,
        };
        started.push(start_typed(v, &[0; VERIFY_KEY_LEN], b"", &input)?);
    }
    let message = v
        .verifier_shares_to_message(b"", &(), started.iter().map(|(_, s)| s.clone()))
        .map_err(|e| VdafStepError::Verify(e.to_string()))?;
    let message = encode("verifier message", &message)?;
    let (state, verifier_share) = started.swap_remove(agg_id);
    let input = VerifyInput {
        agg_id,
        nonce: &nonce,
        public_share: &shares.public_share,
        input_share: &[],
    };
    let verifier_share = encode("verifier share", &verifier_share)?;
    if joint_rand_seed(v, message.len(), b"", &input, &verifier_share)? != message {
        return Err(VdafStepError::Params(
            "this prio version derives the joint randomness seed otherwise than VDAF-18".into(),
        ));
    }
    Ok((T::Field::template(state), message.len()))
}

/// The joint randomness seed a report's verify state holds (VDAF-18, Prio3's
/// `joint_rand_seed`): the XOF, keyed with zeros, over both aggregators' parts in order,
/// this aggregator's own part taken from its verifier share (which ends with it) and the
/// peer's from the public share (the parts, in order). Empty when the VDAF has no joint
/// randomness (`seed_len` 0).
fn joint_rand_seed<T: Type>(
    v: &Prio3Of<T>,
    seed_len: usize,
    ctx: &[u8],
    input: &VerifyInput,
    verifier_share: &[u8],
) -> Result<Vec<u8>, VdafStepError> {
    if seed_len == 0 {
        return Ok(Vec::new());
    }
    let short = |what: &'static str| VdafStepError::Decode {
        what,
        reason: "too short for a joint randomness part".into(),
    };
    let own = verifier_share
        .get(verifier_share.len().saturating_sub(seed_len)..)
        .filter(|part| part.len() == seed_len)
        .ok_or_else(|| short("verifier share"))?;
    let peer = 1 - input.agg_id;
    let peer_part = input
        .public_share
        .get(peer * seed_len..(peer + 1) * seed_len)
        .ok_or_else(|| short("public share"))?;
    let parts = if input.agg_id == 0 {
        [own, peer_part]
    } else {
        [peer_part, own]
    };
    let mut xof = XofTurboShake128::init(
        &[0; VERIFY_KEY_LEN],
        &[&domain_separation_tag(v.algorithm_id()), ctx],
    );
    for part in parts {
        xof.update(part);
    }
    Ok(xof.into_seed().as_ref().to_vec())
}

/// VDAF-18's domain separation tag for the joint randomness seed: the draft's version
/// (18), algorithm class 0, the algorithm id, and the usage (6).
fn domain_separation_tag(algorithm_id: u32) -> [u8; 8] {
    const VDAF_VERSION: u8 = 18;
    const USAGE_JOINT_RAND_SEED: u16 = 6;
    let mut tag = [0; 8];
    tag[0] = VDAF_VERSION;
    tag[2..6].copy_from_slice(&algorithm_id.to_be_bytes());
    tag[6..8].copy_from_slice(&USAGE_JOINT_RAND_SEED.to_be_bytes());
    tag
}

fn start<T: Type>(
    v: &Prio3Of<T>,
    check_len: usize,
    verify_key: &[u8; VERIFY_KEY_LEN],
    ctx: &[u8],
    input: &VerifyInput,
) -> Result<Provisional, VdafStepError>
where
    T::Field: DapField,
{
    let (state, verifier_share) = start_typed(v, verify_key, ctx, input)?;
    let verifier_share = encode("verifier share", &verifier_share)?;
    let check = joint_rand_seed(v, check_len, ctx, input, &verifier_share)?;
    // The message that agrees with this report's own seed: verify_next then hands over
    // the output share it gives every message that agrees.
    let message: Prio3VerifierMessage<VERIFY_KEY_LEN> = decode("verifier message", &state, &check)?;
    let output = match v
        .verify_next(ctx, state, message)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?
    {
        VerifyTransition::Finish(out) => out,
        VerifyTransition::Continue(..) => {
            return Err(VdafStepError::Verify(
                "Prio3 asked for a second round (it has one)".into(),
            ))
        }
    };
    Ok(Provisional {
        verifier_share,
        check,
        output: T::Field::output(output),
    })
}

fn decide<T: Type>(
    v: &Prio3Of<T>,
    template: &Template,
    ctx: &[u8],
    check: &[u8],
    shares: [&[u8]; 2],
) -> Result<(), VdafStepError>
where
    T::Field: DapField,
{
    let template = T::Field::template_of(template).ok_or_else(other_field)?;
    let shares = shares
        .iter()
        .map(|bytes| {
            decode::<_, Prio3VerifierShare<T::Field, VERIFY_KEY_LEN>>(
                "verifier share",
                template,
                bytes,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let message = v
        .verifier_shares_to_message(ctx, &(), shares)
        .map_err(|e| VdafStepError::Verify(e.to_string()))?;
    let kept: Prio3VerifierMessage<VERIFY_KEY_LEN> = decode("kept check", template, check)?;
    // Prio's equality on messages is constant-time.
    if message != kept {
        return Err(VdafStepError::Verify("joint randomness mismatch".into()));
    }
    Ok(())
}

fn empty_sum<T: Type>(v: &Prio3Of<T>) -> AggregateSum
where
    T::Field: DapField,
{
    T::Field::sum(v.aggregate_init(&()))
}

fn decode_sum<T: Type>(v: &Prio3Of<T>, bytes: &[u8]) -> Result<AggregateSum, VdafStepError>
where
    T::Field: DapField,
{
    let sum: AggregateShare<T::Field> = decode("aggregate share", &(v, &()), bytes)?;
    Ok(T::Field::sum(sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::prio3::Measurement;
    use crate::dap::VdafConfig;

    /// Both servers' halves for `measurement`; `tamper` may change the public share.
    fn run(
        config: &VdafConfig,
        measurement: &Measurement,
        tamper: impl Fn(&mut Vec<u8>),
    ) -> (Vec<Provisional>, Vec<Prio3Aggregator>) {
        let vdaf = Prio3Vdaf::new(config).unwrap();
        let nonce = [9u8; 16];
        let mut shares = vdaf.shard(b"ctx", measurement, &nonce).unwrap();
        tamper(&mut shares.public_share);
        let aggregators: Vec<_> = (0..2)
            .map(|id| Prio3Aggregator::new(&vdaf, id).unwrap())
            .collect();
        let started = aggregators
            .iter()
            .enumerate()
            .map(|(id, a)| {
                let input = VerifyInput {
                    agg_id: id,
                    nonce: &nonce,
                    public_share: &shares.public_share,
                    input_share: &shares.input_shares[id],
                };
                a.start(&[3; VERIFY_KEY_LEN], b"ctx", &input).unwrap()
            })
            .collect();
        (started, aggregators)
    }

    #[test]
    fn provisional_shares_sum_to_the_measurement_once_decided() {
        let config = VdafConfig::Histogram {
            length: 8,
            chunk_length: 3,
        };
        let (started, aggregators) = run(&config, &Measurement::Histogram(5), |_| ());
        let shares = [
            &started[0].verifier_share[..],
            &started[1].verifier_share[..],
        ];
        let mut sums = Vec::new();
        for (a, s) in aggregators.iter().zip(&started) {
            assert_eq!(s.check.len(), 32);
            a.decide(b"ctx", &s.check, shares).unwrap();
            let mut sum = a.new_sum();
            sum.add(&s.output).unwrap();
            sums.push(sum.encode().unwrap());
        }
        let vdaf = Prio3Vdaf::new(&config).unwrap();
        let result = vdaf.unshard([&sums[0], &sums[1]], 1).unwrap();
        assert_eq!(
            result,
            super::super::AggregateResult::Vector(vec![0, 0, 0, 0, 0, 1, 0, 0])
        );
        // Subtracting what was added leaves nothing.
        let mut sum = aggregators[0].new_sum();
        sum.add(&started[0].output).unwrap();
        let once = sum.clone();
        sum.subtract(&once).unwrap();
        assert_eq!(
            sum.encode().unwrap(),
            aggregators[0].new_sum().encode().unwrap()
        );
        let decoded = aggregators[0].decode_sum(&once.encode().unwrap()).unwrap();
        assert_eq!(decoded.encode().unwrap(), once.encode().unwrap());
    }

    #[test]
    fn a_tampered_joint_randomness_part_is_refused_by_both() {
        let config = VdafConfig::Histogram {
            length: 8,
            chunk_length: 3,
        };
        // The public share is the two joint randomness parts; flip a bit of the helper's.
        let (started, aggregators) = run(&config, &Measurement::Histogram(2), |p| {
            let last = p.len() - 1;
            p[last] ^= 1;
        });
        let shares = [
            &started[0].verifier_share[..],
            &started[1].verifier_share[..],
        ];
        for (a, s) in aggregators.iter().zip(&started) {
            let verdict = a.decide(b"ctx", &s.check, shares);
            assert!(
                matches!(verdict, Err(VdafStepError::Verify(_))),
                "{verdict:?}"
            );
        }
    }

    #[test]
    fn count_has_no_joint_randomness_to_check() {
        let (started, aggregators) = run(&VdafConfig::Count, &Measurement::Count(true), |_| ());
        let shares = [
            &started[0].verifier_share[..],
            &started[1].verifier_share[..],
        ];
        for (a, s) in aggregators.iter().zip(&started) {
            assert_eq!(a.check_len(), 0);
            assert!(s.check.is_empty());
            a.decide(b"ctx", &s.check, shares).unwrap();
        }
        // Another report's verifier share does not pass.
        let (other, _) = run(&VdafConfig::Count, &Measurement::Count(false), |_| ());
        let mixed = [&started[0].verifier_share[..], &other[1].verifier_share[..]];
        assert!(aggregators[0].decide(b"ctx", &[], mixed).is_err());
    }

    #[test]
    fn sums_of_different_fields_do_not_mix() {
        let count = Prio3Aggregator::new(&Prio3Vdaf::new(&VdafConfig::Count).unwrap(), 0).unwrap();
        let histogram = Prio3Aggregator::new(
            &Prio3Vdaf::new(&VdafConfig::Histogram {
                length: 4,
                chunk_length: 2,
            })
            .unwrap(),
            0,
        )
        .unwrap();
        let mut sum = count.new_sum();
        assert!(sum.merge(&histogram.new_sum()).is_err());
    }
}
