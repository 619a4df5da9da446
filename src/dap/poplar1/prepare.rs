//! One server's side of a Poplar1 pass over a report, in the three steps a batch pipeline
//! runs them (two exchanges of verifier shares between them): `start` evaluates the
//! report's IDPF key at the pass's prefixes and sketches it; `second` joins both servers'
//! first shares into the sketch and answers it; `finish` joins both second shares, and
//! the report is valid when they cancel. Each server computes every verifier message
//! itself from both shares, so only shares cross between the servers. The state between
//! steps is this server's secret (its share of the report's prefix counts): the pipeline
//! keeps it sealed in the server's own storage.

use prio::codec::{Encode, ParameterizedDecode};
use prio::vdaf::poplar1::{
    Poplar1FieldVec, Poplar1InputShare, Poplar1PublicShare, Poplar1VerifierState,
};
use prio::vdaf::{Aggregatable, Aggregator, VerifyTransition};

use super::{Pass, Poplar1Vdaf};
use crate::dap::prio3::{NONCE_LEN, VERIFY_KEY_LEN};
use crate::dap::step_error::VdafStepError;

/// What a round leaves: the state this server keeps and the verifier share for its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub state: Vec<u8>,
    pub verifier_share: Vec<u8>,
}

/// One aggregator (0 leader, 1 helper) of a Poplar1 task.
#[derive(Debug, Clone)]
pub struct Poplar1Aggregator {
    poplar: Poplar1Vdaf,
    agg_id: usize,
}

fn decode_error(what: &'static str) -> impl Fn(prio::codec::CodecError) -> VdafStepError {
    move |e| VdafStepError::Decode {
        what,
        reason: e.to_string(),
    }
}

fn encode<T: Encode>(what: &'static str, value: &T) -> Result<Vec<u8>, VdafStepError> {
    value.get_encoded().map_err(|e| VdafStepError::Decode {
        what,
        reason: format!("encoding: {e}"),
    })
}

fn verify_error(e: prio::vdaf::VdafError) -> VdafStepError {
    VdafStepError::Verify(e.to_string())
}

impl Poplar1Aggregator {
    pub(super) fn new(poplar: Poplar1Vdaf, agg_id: usize) -> Result<Self, VdafStepError> {
        if agg_id > 1 {
            return Err(VdafStepError::Params(format!(
                "aggregator id {agg_id} (DAP has aggregators 0 and 1)"
            )));
        }
        Ok(Poplar1Aggregator { poplar, agg_id })
    }

    pub fn agg_id(&self) -> usize {
        self.agg_id
    }

    /// Round one: this server's input share (opened) evaluated at the pass's prefixes.
    /// An error here (a share that does not decode) makes the report invalid.
    pub fn start(
        &self,
        verify_key: &[u8; VERIFY_KEY_LEN],
        pass: &Pass,
        nonce: &[u8; NONCE_LEN],
        public_share: &[u8],
        input_share: &[u8],
    ) -> Result<Step, VdafStepError> {
        let p = &self.poplar;
        p.check_pass(pass)?;
        let public = Poplar1PublicShare::get_decoded_with_param(&p.vdaf, public_share)
            .map_err(decode_error("public share"))?;
        let input = Poplar1InputShare::get_decoded_with_param(&(&p.vdaf, self.agg_id), input_share)
            .map_err(decode_error("input share"))?;
        let (state, share) = p
            .vdaf
            .verify_init(
                verify_key,
                &p.ctx,
                self.agg_id,
                pass.param(),
                nonce,
                &public,
                &input,
            )
            .map_err(verify_error)?;
        Ok(Step {
            state: encode("verify state", &state)?,
            verifier_share: encode("verifier share", &share)?,
        })
    }

    /// Round two: both servers' first verifier shares (leader's first) into the sketch,
    /// and this server's answer to it. Fails when a share is malformed.
    pub fn second(
        &self,
        pass: &Pass,
        state: &[u8],
        shares: [&[u8]; 2],
    ) -> Result<Step, VdafStepError> {
        match self.next(pass, state, shares)? {
            VerifyTransition::Continue(state, share) => Ok(Step {
                state: encode("verify state", &state)?,
                verifier_share: encode("verifier share", &share)?,
            }),
            VerifyTransition::Finish(_) => Err(VdafStepError::Verify(
                "the report finished after one round (a state of round two was given)".into(),
            )),
        }
    }

    /// The end: both servers' second verifier shares decide the report. Valid: this
    /// server's output share (one field element per prefix), encoded. Invalid: why.
    pub fn finish(
        &self,
        pass: &Pass,
        state: &[u8],
        shares: [&[u8]; 2],
    ) -> Result<Vec<u8>, VdafStepError> {
        match self.next(pass, state, shares)? {
            VerifyTransition::Finish(output) => encode("output share", &output),
            VerifyTransition::Continue(..) => Err(VdafStepError::Verify(
                "the report needs another round (a state of round one was given)".into(),
            )),
        }
    }

    fn next(
        &self,
        pass: &Pass,
        state: &[u8],
        shares: [&[u8]; 2],
    ) -> Result<VerifyTransition<super::Vdaf, 32, 16>, VdafStepError> {
        let p = &self.poplar;
        let state = Poplar1VerifierState::get_decoded_with_param(&(&p.vdaf, self.agg_id), state)
            .map_err(decode_error("verify state"))?;
        let decoded = shares
            .iter()
            .map(|bytes| {
                Poplar1FieldVec::get_decoded_with_param(&state, bytes)
                    .map_err(decode_error("verifier share"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let message = p
            .vdaf
            .verifier_shares_to_message(&p.ctx, pass.param(), decoded)
            .map_err(verify_error)?;
        p.vdaf
            .verify_next(&p.ctx, state, message)
            .map_err(verify_error)
    }

    /// Bytes of this server's state after round one and after round two of `pass`: fixed
    /// for a pass, so the pipeline keeps states as fixed-size records. Found by running
    /// both servers' rounds on a made-up report.
    pub fn state_lens(&self, pass: &Pass) -> Result<[usize; 2], VdafStepError> {
        let p = &self.poplar;
        p.check_pass(pass)?;
        let nonce = [0; NONCE_LEN];
        let made_up = super::Prefix::from_bools(&vec![true; p.bits]);
        let shares = p.shard_input(made_up.idpf(), &nonce)?;
        let key = [0; VERIFY_KEY_LEN];
        let firsts = [0, 1].map(|agg_id| {
            Poplar1Aggregator::new(p.clone(), agg_id)?.start(
                &key,
                pass,
                &nonce,
                &shares.public_share,
                &shares.input_shares[agg_id],
            )
        });
        let [leader, helper] = firsts;
        let (leader, helper) = (leader?, helper?);
        let mine = if self.agg_id == 0 { &leader } else { &helper };
        let second = self.second(
            pass,
            &mine.state,
            [&leader.verifier_share, &helper.verifier_share],
        )?;
        Ok([mine.state.len(), second.state.len()])
    }

    /// A sum of no reports' output shares at `pass`.
    pub fn new_sum(&self, pass: &Pass) -> Result<PrefixSum, VdafStepError> {
        self.poplar.check_pass(pass)?;
        Ok(PrefixSum {
            poplar: self.poplar.clone(),
            pass: pass.clone(),
            sum: self.poplar.vdaf.aggregate_init(pass.param()),
            reports: 0,
        })
    }
}

/// One server's share of a pass's per-prefix counts over the reports added so far.
#[derive(Debug, Clone)]
pub struct PrefixSum {
    poplar: Poplar1Vdaf,
    pass: Pass,
    sum: Poplar1FieldVec,
    reports: u64,
}

impl PrefixSum {
    /// Adds one report's output share (as `finish` returned it).
    pub fn add(&mut self, output_share: &[u8]) -> Result<(), VdafStepError> {
        let share = self
            .poplar
            .decode_field_vec("output share", &self.pass, output_share)?;
        self.sum
            .accumulate(&share)
            .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
        self.reports += 1;
        Ok(())
    }

    /// Adds another sum of the same pass (of other reports).
    pub fn merge(&mut self, other: &PrefixSum) -> Result<(), VdafStepError> {
        if other.pass != self.pass {
            return Err(VdafStepError::Aggregate(
                "sums of different passes do not add".into(),
            ));
        }
        self.sum
            .merge(&other.sum)
            .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
        self.reports += other.reports;
        Ok(())
    }

    /// Adds `noise[i]` to the count of prefix `i` (differential privacy): a negative
    /// value is the field's negative, which the collector reads back as such.
    pub fn add_noise(&mut self, noise: &[i64]) -> Result<(), VdafStepError> {
        fn noisy<F>(counts: &mut [F], noise: &[i64]) -> Result<(), VdafStepError>
        where
            F: prio::field::FieldElement + From<u64>,
        {
            if counts.len() != noise.len() {
                return Err(VdafStepError::Aggregate(format!(
                    "{} noise values for {} counts",
                    noise.len(),
                    counts.len()
                )));
            }
            for (count, n) in counts.iter_mut().zip(noise) {
                let magnitude = F::from(n.unsigned_abs());
                *count += if *n < 0 { -magnitude } else { magnitude };
            }
            Ok(())
        }
        match &mut self.sum {
            Poplar1FieldVec::Inner(counts) => noisy(counts, noise),
            Poplar1FieldVec::Leaf(counts) => noisy(counts, noise),
        }
    }

    /// Reports added.
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// The aggregate share, encoded (what is sealed to the collector).
    pub fn encode(&self) -> Result<Vec<u8>, VdafStepError> {
        encode("aggregate share", &self.sum)
    }
}
