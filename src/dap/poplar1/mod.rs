//! Poplar1 (VDAF-18 §8, prio 0.18 `experimental`): which strings are common among the
//! devices, learned without learning any device's string. A report's measurement is a
//! string of at most `bits / 8` bytes, padded with zeros to a `bits`-bit IDPF input. The
//! servers evaluate every report at a [`Pass`]'s level and candidate prefixes and verify
//! it in two rounds of verifier shares ([`Poplar1Aggregator`]); the collector counts each
//! prefix and, by its threshold, picks the next pass's prefixes ([`Traversal`]).
//!
//! Byte in / byte out like `prio3`: shares, states and sums cross this API encoded, the
//! form in which they travel and are stored, and the only prio type callers see is none.

mod pass;
mod prepare;
mod traversal;

pub use pass::{Pass, Prefix};
pub use prepare::{Poplar1Aggregator, PrefixSum, Step as PrepareStep};
pub use traversal::{HeavyHitter, Next, Traversal};

use prio::codec::{Encode, ParameterizedDecode};
use prio::idpf::IdpfInput;
use prio::vdaf::poplar1::{Poplar1, Poplar1FieldVec};
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::{Aggregatable, Client, Collector};

use super::prio3::{dap_context, Shares, NONCE_LEN};
use super::step_error::VdafStepError;
use super::task::{DapVersion, Task, VdafConfig};

/// What a string measurement of `bits` must be: 1 to bits/8 bytes, none of them zero (the
/// padding is zeros, so a zero byte would be ambiguous). The one rule for the JSON reader
/// and the client.
pub fn check_string(bytes: &[u8], bits: usize) -> Result<(), String> {
    let max = bits / 8;
    if bytes.is_empty() || bytes.len() > max {
        return Err(format!(
            "a string of {} bytes, expected 1 to {max}",
            bytes.len()
        ));
    }
    if bytes.contains(&0) {
        return Err("the string holds a NUL byte (NUL pads strings to the task's length)".into());
    }
    Ok(())
}

/// Poplar1 with VDAF-18's XOF and 32-byte seeds (the verify key is 32 bytes, as Prio3's).
type Vdaf = Poplar1<XofTurboShake128, 32>;

/// A task's Poplar1: its string length and the VDAF context (DAP-18's "dap-18" ‖ task id).
#[derive(Debug, Clone)]
pub struct Poplar1Vdaf {
    vdaf: Vdaf,
    bits: usize,
    ctx: Vec<u8>,
}

impl Poplar1Vdaf {
    /// The Poplar1 of a DAP-18 task whose VDAF is poplar1.
    pub fn new(task: &Task) -> Result<Self, VdafStepError> {
        match (task.vdaf(), task.version()) {
            (VdafConfig::Poplar1 { bits }, DapVersion::Dap18) => Ok(Self::with_params(
                usize::from(*bits),
                dap_context(task.task_id()),
            )),
            (VdafConfig::Poplar1 { .. }, DapVersion::Dap09) => Err(VdafStepError::Params(
                "poplar1 tasks speak DAP-18 only".into(),
            )),
            (other, _) => Err(VdafStepError::Params(format!(
                "the task's VDAF is {}, not poplar1",
                other.name()
            ))),
        }
    }

    /// Poplar1 over `bits`-bit inputs in context `ctx` (any bit count: test vectors use 4
    /// and 11; tasks take whole bytes).
    pub fn with_params(bits: usize, ctx: Vec<u8>) -> Self {
        Poplar1Vdaf {
            vdaf: Poplar1::new_turboshake128(bits),
            bits,
            ctx,
        }
    }

    /// Measurement length in bits: the tree's depth (levels 0 to bits - 1).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The IDPF input of a string: its bytes, zero-padded to `bits / 8`.
    pub fn input_of(&self, string: &[u8]) -> Result<Prefix, VdafStepError> {
        if self.bits % 8 != 0 {
            return Err(VdafStepError::Shard(format!(
                "strings are whole bytes, and {} bits are not",
                self.bits
            )));
        }
        check_string(string, self.bits).map_err(VdafStepError::Shard)?;
        let mut padded = string.to_vec();
        padded.resize(self.bits / 8, 0);
        Ok(Prefix::from_bytes(&padded))
    }

    /// Client side: splits the string into a public share (the IDPF's correction words)
    /// and two input shares (IDPF keys and correlated randomness).
    pub fn shard(&self, string: &[u8], nonce: &[u8; NONCE_LEN]) -> Result<Shares, VdafStepError> {
        let input = self.input_of(string)?;
        self.shard_input(input.idpf(), nonce)
    }

    fn shard_input(
        &self,
        input: &IdpfInput,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Shares, VdafStepError> {
        let shard = |e: &dyn std::fmt::Display| VdafStepError::Shard(e.to_string());
        let (public, inputs) = self
            .vdaf
            .shard(&self.ctx, input, nonce)
            .map_err(|e| shard(&e))?;
        let [leader, helper]: [_; 2] = inputs
            .try_into()
            .map_err(|_| VdafStepError::Shard("prio did not return two input shares".into()))?;
        Ok(Shares {
            public_share: public.get_encoded().map_err(|e| shard(&e))?,
            input_shares: [
                leader.get_encoded().map_err(|e| shard(&e))?,
                helper.get_encoded().map_err(|e| shard(&e))?,
            ],
        })
    }

    /// Aggregator `agg_id` (0 leader, 1 helper) of this task.
    pub fn aggregator(&self, agg_id: usize) -> Result<Poplar1Aggregator, VdafStepError> {
        Poplar1Aggregator::new(self.clone(), agg_id)
    }

    /// Refuses a pass whose level is not in this task's tree.
    pub fn check_pass(&self, pass: &Pass) -> Result<(), VdafStepError> {
        if pass.level() >= self.bits {
            return Err(VdafStepError::Params(format!(
                "the pass is at level {}, but the tree's last level is {}",
                pass.level(),
                self.bits - 1
            )));
        }
        Ok(())
    }

    /// Collector: both servers' sums of a pass (leader's first) into one count per prefix.
    pub fn unshard(&self, pass: &Pass, sums: [&[u8]; 2]) -> Result<Vec<u64>, VdafStepError> {
        self.check_pass(pass)?;
        let decoded = sums
            .iter()
            .map(|bytes| self.decode_field_vec("aggregate share", pass, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        self.vdaf
            .unshard(pass.param(), decoded, 0)
            .map_err(|e| VdafStepError::Aggregate(e.to_string()))
    }

    /// As [`Self::unshard`], for counts that may carry noise (differential privacy): a
    /// field element in the upper half is a negative count.
    pub fn unshard_signed(&self, pass: &Pass, sums: [&[u8]; 2]) -> Result<Vec<i64>, VdafStepError> {
        self.check_pass(pass)?;
        let mut total = self.decode_field_vec("aggregate share", pass, sums[0])?;
        let other = self.decode_field_vec("aggregate share", pass, sums[1])?;
        total
            .accumulate(&other)
            .map_err(|e| VdafStepError::Aggregate(e.to_string()))?;
        let out_of_range = || VdafStepError::Aggregate("a count beyond 63 bits".into());
        fn signed<F: prio::field::FieldElement>(
            x: F,
            magnitude: impl Fn(F) -> Option<u64>,
        ) -> Option<i64> {
            // Small positive counts convert; a negative one converts once negated.
            match magnitude(x) {
                Some(v) => i64::try_from(v).ok(),
                None => magnitude(-x)
                    .and_then(|v| i64::try_from(v).ok())
                    .map(|v| -v),
            }
        }
        match total {
            Poplar1FieldVec::Inner(counts) => counts
                .into_iter()
                .map(|x| {
                    // Field64: values above half the modulus are negative.
                    signed(x, |y| {
                        let v = u64::from(y);
                        (v <= u64::MAX / 4).then_some(v)
                    })
                    .ok_or_else(out_of_range)
                })
                .collect(),
            Poplar1FieldVec::Leaf(counts) => counts
                .into_iter()
                .map(|x| signed(x, |y| u64::try_from(y).ok()).ok_or_else(out_of_range))
                .collect(),
        }
    }

    /// An output share or a sum of them: one field element per prefix (Field64 at inner
    /// levels, Field255 at the last).
    fn decode_field_vec(
        &self,
        what: &'static str,
        pass: &Pass,
        bytes: &[u8],
    ) -> Result<Poplar1FieldVec, VdafStepError> {
        Poplar1FieldVec::get_decoded_with_param(&(&self.vdaf, pass.param()), bytes).map_err(|e| {
            VdafStepError::Decode {
                what,
                reason: e.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests;
