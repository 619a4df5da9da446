//! Random measurements for a Prio3 VDAF, skewed towards low values so the result has a
//! shape to compare, and the true aggregate they add up to.

use crate::dap::{Measurement, VdafConfig};
use rand::RngExt;

/// A value in `0..=max`, favouring low ones: squaring a uniform number does.
fn skewed(max: u64, rng: &mut impl rand::Rng) -> u64 {
    let u: f64 = rng.random();
    // A float above u64::MAX saturates in the cast; `min` keeps it in range.
    ((u * u * (max as f64 + 1.0)) as u64).min(max)
}

/// One client's measurement for `vdaf`.
pub(crate) fn measurement(vdaf: &VdafConfig, rng: &mut impl rand::Rng) -> Measurement {
    match *vdaf {
        VdafConfig::Count => Measurement::Count(rng.random_bool(0.3)),
        VdafConfig::Sum { max_measurement } => Measurement::Sum(skewed(max_measurement, rng)),
        VdafConfig::SumVec {
            length,
            max_measurement,
            ..
        } => Measurement::SumVec(
            (0..length)
                .map(|_| u128::from(skewed(max_measurement, rng)))
                .collect(),
        ),
        VdafConfig::Histogram { length, .. } => {
            Measurement::Histogram(skewed(u64::from(length).saturating_sub(1), rng) as usize)
        }
        VdafConfig::MultihotCountVec {
            length, max_weight, ..
        } => {
            let length = length as usize;
            let most = usize::try_from(max_weight).map_or(length, |w| w.min(length));
            let weight = rng.random_range(0..=most);
            let mut flags = vec![false; length];
            for i in rand::seq::index::sample(rng, length, weight) {
                flags[i] = true;
            }
            Measurement::Multihot(flags)
        }
        VdafConfig::Poplar1 { bits } => Measurement::String(zipf_word(bits, rng)),
    }
}

/// Words a heavy-hitters demo draws from.
const WORDS: u32 = 1000;

/// A word of Zipf's law (exponent 1) over [`WORDS`] words, `w0` the most common (about
/// 13% of draws), cut to the task's `bits / 8` bytes.
pub(crate) fn zipf_word(bits: u16, rng: &mut impl rand::Rng) -> Vec<u8> {
    // Inverse of the harmonic CDF, H(k) ≈ ln(k + 1/2) + γ: within a few percent of the
    // law for every rank (w0 about 13%, w1 7%), which a demo needs; the truth is counted
    // from the draws, not the law.
    const GAMMA: f64 = 0.577_215_664_9;
    let harmonic = (f64::from(WORDS) + 0.5).ln() + GAMMA;
    let u: f64 = rng.random::<f64>() * harmonic;
    let rank = (((u - GAMMA).exp() - 0.5).max(0.0).floor() as u32).min(WORDS - 1);
    let mut word = format!("w{rank}").into_bytes();
    word.truncate(usize::from(bits / 8).max(1));
    word
}

/// The aggregate of no measurement: one number for count and sum, one per position else.
pub(super) fn zero(vdaf: &VdafConfig) -> Vec<u128> {
    match *vdaf {
        VdafConfig::Count | VdafConfig::Sum { .. } => vec![0],
        VdafConfig::SumVec { length, .. }
        | VdafConfig::Histogram { length, .. }
        | VdafConfig::MultihotCountVec { length, .. } => vec![0; length as usize],
        // Heavy hitters are counted per string, not in a vector.
        VdafConfig::Poplar1 { .. } => Vec::new(),
    }
}

/// Adds `m` to the true aggregate `truth` (of [`zero`]'s shape for m's VDAF).
pub(super) fn add(truth: &mut [u128], m: &Measurement) {
    let values: Vec<u128> = match m {
        Measurement::Count(b) => vec![u128::from(*b)],
        Measurement::Sum(n) => vec![u128::from(*n)],
        Measurement::SumVec(v) => v.clone(),
        Measurement::Histogram(i) => (0..truth.len()).map(|j| u128::from(j == *i)).collect(),
        Measurement::Multihot(flags) => flags.iter().map(|&f| u128::from(f)).collect(),
        Measurement::String(_) => Vec::new(),
    };
    truth.iter_mut().zip(values).for_each(|(t, v)| *t += v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_fit_their_vdaf_and_add_up() {
        let mut rng = rand::rng();
        for spec in [
            "count",
            "sum:7",
            "sumvec:3:5",
            "histogram:4",
            "multihot:5:2",
        ] {
            let vdaf = VdafConfig::from_spec(spec).unwrap();
            let mut truth = zero(&vdaf);
            for _ in 0..200 {
                let m = measurement(&vdaf, &mut rng);
                // The client library would refuse a measurement that does not fit.
                let json = match &m {
                    Measurement::Count(b) => serde_json::json!(b),
                    Measurement::Sum(n) => serde_json::json!(n),
                    Measurement::SumVec(v) => serde_json::json!(v),
                    Measurement::Histogram(i) => serde_json::json!(i),
                    Measurement::Multihot(f) => serde_json::json!(f),
                    Measurement::String(s) => serde_json::json!(String::from_utf8_lossy(s)),
                };
                assert_eq!(
                    Measurement::from_json(&vdaf, &json),
                    Ok(m.clone()),
                    "{spec}"
                );
                add(&mut truth, &m);
            }
            assert!(truth.iter().sum::<u128>() > 0, "{spec}: {truth:?}");
        }
    }

    #[test]
    fn zipf_words_follow_the_law_rank_by_rank() {
        let mut rng = rand::rng();
        let mut counts = std::collections::HashMap::<Vec<u8>, u32>::new();
        for _ in 0..40_000 {
            *counts.entry(zipf_word(64, &mut rng)).or_default() += 1;
        }
        let share = |w: &str| f64::from(counts[w.as_bytes()]) / 40_000.0;
        // Zipf over 1000 words: rank k has 1 / (k · H(1000)), H(1000) ≈ 7.485.
        for (k, word) in ["w0", "w1", "w2", "w3"].iter().enumerate() {
            let law = 1.0 / ((k + 1) as f64 * 7.485);
            assert!(
                (share(word) / law - 1.0).abs() < 0.15,
                "{word}: {}",
                share(word)
            );
        }
        // Cut to the task's length: one byte for an 8-bit task.
        assert_eq!(zipf_word(8, &mut rng).len(), 1);
    }

    #[test]
    fn histograms_lean_to_low_buckets() {
        let vdaf = VdafConfig::from_spec("histogram:4").unwrap();
        let mut rng = rand::rng();
        let mut truth = zero(&vdaf);
        for _ in 0..4000 {
            add(&mut truth, &measurement(&vdaf, &mut rng));
        }
        assert!(truth[0] > truth[3], "{truth:?}");
    }
}
