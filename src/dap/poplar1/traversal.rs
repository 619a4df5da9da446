//! The collector's side of heavy hitters: from one pass's counts, the next pass's
//! candidates. A prefix whose count reaches the threshold is kept and extended by `step`
//! bits (all 2^step extensions become candidates; the last pass adds what is left), so a
//! traversal of `bits`-bit strings takes ⌈bits / step⌉ passes with at most
//! (reports / threshold) · 2^step candidates each: fewer passes for more candidates, as
//! Poplar1 allows (a pass may skip levels).

use super::pass::{Pass, Prefix};
use crate::dap::step_error::VdafStepError;

/// The widest step: 2^8 candidates per kept prefix.
pub const MAX_STEP: usize = 8;

/// How a traversal walks the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traversal {
    bits: usize,
    threshold: u64,
    step: usize,
}

/// A string found common, with how many reports carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeavyHitter {
    pub string: Prefix,
    pub count: u64,
}

/// What follows a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Another pass, deeper.
    Pass(Pass),
    /// The traversal is over: the strings at the last level whose count reached the
    /// threshold (none when every prefix fell below it earlier), most common first.
    Done(Vec<HeavyHitter>),
}

impl Traversal {
    pub fn new(bits: usize, threshold: u64, step: usize) -> Result<Self, VdafStepError> {
        if bits == 0 {
            return Err(VdafStepError::Params("a tree of 0 bits".into()));
        }
        if threshold == 0 {
            return Err(VdafStepError::Params(
                "the threshold must be at least 1 report".into(),
            ));
        }
        if step == 0 || step > MAX_STEP {
            return Err(VdafStepError::Params(format!(
                "the step must be 1 to {MAX_STEP} bits per pass, got {step}"
            )));
        }
        Ok(Traversal {
            bits,
            threshold,
            step,
        })
    }

    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// Passes a traversal takes when some prefix survives to the end.
    pub fn passes(&self) -> usize {
        self.bits.div_ceil(self.step)
    }

    /// The first pass: every prefix of the first `step` bits.
    pub fn first(&self) -> Result<Pass, VdafStepError> {
        let width = self.step.min(self.bits);
        Pass::new(Prefix::from_bools(&[]).children(width).collect())
    }

    /// Reads a pass's counts (one per prefix, in the pass's order) and says what follows.
    pub fn next(&self, pass: &Pass, counts: &[u64]) -> Result<Next, VdafStepError> {
        if counts.len() != pass.len() {
            return Err(VdafStepError::Aggregate(format!(
                "{} counts for a pass of {} prefixes",
                counts.len(),
                pass.len()
            )));
        }
        let done_bits = pass.level() + 1;
        if done_bits > self.bits {
            return Err(VdafStepError::Params(format!(
                "a pass at level {} in a tree of {} bits",
                pass.level(),
                self.bits
            )));
        }
        let mut kept: Vec<HeavyHitter> = pass
            .prefixes()
            .into_iter()
            .zip(counts)
            .filter(|(_, &count)| count >= self.threshold)
            .map(|(string, &count)| HeavyHitter { string, count })
            .collect();
        if done_bits == self.bits || kept.is_empty() {
            kept.sort_by(|a, b| b.count.cmp(&a.count).then(a.string.cmp(&b.string)));
            return Ok(Next::Done(kept));
        }
        let more = self.step.min(self.bits - done_bits);
        let candidates = kept
            .iter()
            .flat_map(|hit| hit.string.children(more))
            .collect();
        Ok(Next::Pass(Pass::new(candidates)?))
    }
}
