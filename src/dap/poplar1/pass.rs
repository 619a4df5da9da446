//! A Poplar1 pass: the level of the IDPF tree the servers evaluate and the candidate
//! prefixes they count there (VDAF-18's aggregation parameter, in its encoding), and the
//! prefix type the collector reads results by.

use prio::codec::{Decode, Encode};
use prio::idpf::IdpfInput;
use prio::vdaf::poplar1::Poplar1AggregationParam;
use prio::vdaf::Aggregator;

use super::Vdaf;
use crate::dap::step_error::VdafStepError;

/// A bit string: a candidate prefix, or a whole measurement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix(IdpfInput);

impl Prefix {
    /// The bits of `bytes`, most significant first.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Prefix(IdpfInput::from_bytes(bytes))
    }

    pub fn from_bools(bits: &[bool]) -> Self {
        Prefix(IdpfInput::from_bools(bits))
    }

    /// Length in bits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its first `bits` bits (all of it when shorter).
    pub fn truncate(&self, bits: usize) -> Self {
        match bits {
            0 => Prefix::from_bools(&[]),
            n if n >= self.len() => self.clone(),
            n => Prefix(self.0.prefix(n - 1)),
        }
    }

    /// Every extension by `more` bits, in lexicographic order (2^more of them).
    pub fn children(&self, more: usize) -> impl Iterator<Item = Prefix> + '_ {
        (0u64..1 << more).map(move |suffix| {
            let bits: Vec<bool> = (0..more).rev().map(|i| suffix >> i & 1 == 1).collect();
            Prefix(self.0.clone_with_suffix(&bits))
        })
    }

    /// The bits as `0` and `1`.
    pub fn bit_string(&self) -> String {
        self.0.iter().map(|b| if b { '1' } else { '0' }).collect()
    }

    /// As a string measurement reads: whole bytes with the zero padding dropped, when they
    /// are UTF-8 (None for a prefix of partial bytes or other bytes).
    pub fn text(&self) -> Option<String> {
        String::from_utf8(self.string_bytes()?).ok()
    }

    /// The string measurement's bytes: whole bytes with the zero padding dropped (None for
    /// a prefix of partial bytes).
    pub fn string_bytes(&self) -> Option<Vec<u8>> {
        if self.len() % 8 != 0 {
            return None;
        }
        let mut bytes = self.0.to_bytes();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Some(bytes)
    }

    pub(super) fn idpf(&self) -> &IdpfInput {
        &self.0
    }
}

impl std::fmt::Display for Prefix {
    /// Text when the prefix is whole UTF-8 bytes, else its bits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text() {
            Some(text) => write!(f, "{text:?}"),
            None => write!(f, "0b{}", self.bit_string()),
        }
    }
}

/// One pass over a batch: a level and its candidate prefixes (each `level + 1` bits,
/// distinct, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass(Poplar1AggregationParam);

impl Pass {
    /// Sorts and checks the prefixes: at least one, all of one length, no repeats.
    pub fn new(mut prefixes: Vec<Prefix>) -> Result<Self, VdafStepError> {
        prefixes.sort();
        let inputs = prefixes.into_iter().map(|p| p.0).collect();
        Poplar1AggregationParam::try_from_prefixes(inputs)
            .map(Pass)
            .map_err(|e| VdafStepError::Params(format!("pass prefixes: {e}")))
    }

    /// The tree level: the prefixes' length minus one.
    pub fn level(&self) -> usize {
        self.0.level()
    }

    pub fn prefixes(&self) -> Vec<Prefix> {
        self.0.prefixes().iter().cloned().map(Prefix).collect()
    }

    pub fn len(&self) -> usize {
        self.0.prefixes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.prefixes().is_empty()
    }

    /// VDAF-18's encoding: `level u16 | count u32 | packed prefixes`.
    pub fn encode(&self) -> Result<Vec<u8>, VdafStepError> {
        self.0.get_encoded().map_err(|e| VdafStepError::Decode {
            what: "pass",
            reason: e.to_string(),
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VdafStepError> {
        Poplar1AggregationParam::get_decoded(bytes)
            .map(Pass)
            .map_err(|e| VdafStepError::Decode {
                what: "pass",
                reason: e.to_string(),
            })
    }

    /// VDAF-18's rule for evaluating the same reports again: after `earlier` (in order),
    /// this pass is deeper than the last and each of its prefixes extends one of the
    /// last's. A report evaluated by a pass breaking it could be made to leak more than
    /// its prefix counts.
    pub fn may_follow(&self, earlier: &[Pass]) -> bool {
        let earlier: Vec<Poplar1AggregationParam> = earlier.iter().map(|p| p.0.clone()).collect();
        <Vdaf as Aggregator<32, 16>>::is_agg_param_valid(&self.0, &earlier)
    }

    pub(super) fn param(&self) -> &Poplar1AggregationParam {
        &self.0
    }
}
