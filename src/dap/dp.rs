//! A task's differential privacy: the noise each server adds to its own aggregate share
//! before it seals it to the collector, so that neither the collector nor the other
//! server learns an exact count from it. One mechanism: discrete Laplace noise (the
//! `prio` crate's sampler, [CKS20]) of scale Δ/ε on every value of a release, Δ being the
//! VDAF's L1 sensitivity when one device's measurement is replaced by another (the
//! substitution model, as `prio` uses for Histogram and SumVec): count 1, sum
//! `max_measurement`, sumvec `length × max_measurement`, histogram 2, multihot
//! `min(2 × max_weight, length)`, and a Poplar1 pass 2 (its prefixes are disjoint). Each
//! release (a run's sum part, a pass's) is then ε-differentially private from either
//! server's noise alone.
//!
//! The noise of a release is drawn from a seed only its server knows (derived from its
//! stash key and the release's name), so rerunning a release can never draw fresh noise
//! (averaging reruns would undo it): the result of a rerun is byte-identical.
//!
//! A task may set a budget: the total ε its releases may spend (basic composition). Each
//! server keeps a ledger of what it released (`stages::dp_ledger`) and refuses a release
//! beyond the budget.
//!
//! In the task file: `"dp": {"mechanism": "discrete_laplace", "epsilon": "1/2",
//! "budget": "10"}` (ε and the budget as a fraction or a decimal; the budget optional).

use super::VdafConfig;
use prio::dp::distributions::DiscreteLaplace;
use prio::dp::Rational;
use prio::vdaf::xof::{Xof, XofTurboShake128};
use rand::distr::Distribution;
use serde::{Deserialize, Serialize};

/// ε as the fraction `numer / denom` (both at least 1), exact as the task file states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epsilon {
    numer: u64,
    denom: u64,
}

impl Epsilon {
    /// Reads "N/D", or a decimal number with at most 9 digits after the point.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("epsilon {text:?} is not a positive fraction N/D or decimal");
        let (numer, denom) = match text.split_once('/') {
            Some((n, d)) => (
                n.trim().parse::<u64>().map_err(|_| bad())?,
                d.trim().parse::<u64>().map_err(|_| bad())?,
            ),
            None => {
                let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
                if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let denom = 10u64.pow(frac.len() as u32);
                let whole = match whole {
                    "" => 0,
                    w => w.parse::<u64>().map_err(|_| bad())?,
                };
                let frac = match frac {
                    "" => 0,
                    f => f.parse::<u64>().map_err(|_| bad())?,
                };
                let numer = whole
                    .checked_mul(denom)
                    .and_then(|w| w.checked_add(frac))
                    .ok_or_else(bad)?;
                (numer, denom)
            }
        };
        if numer == 0 || denom == 0 {
            return Err(bad());
        }
        let g = gcd(numer, denom);
        Ok(Epsilon {
            numer: numer / g,
            denom: denom / g,
        })
    }

    /// ε as a float, for messages and results.
    pub fn value(&self) -> f64 {
        self.numer as f64 / self.denom as f64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    match b {
        0 => a,
        _ => gcd(b, a % b),
    }
}

impl std::fmt::Display for Epsilon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.denom {
            1 => write!(f, "{}", self.numer),
            d => write!(f, "{}/{d}", self.numer),
        }
    }
}

impl Epsilon {
    /// `self + other`, if it fits.
    pub fn checked_add(self, other: Epsilon) -> Option<Epsilon> {
        let numer = u128::from(self.numer) * u128::from(other.denom)
            + u128::from(other.numer) * u128::from(self.denom);
        let denom = u128::from(self.denom) * u128::from(other.denom);
        let g = gcd128(numer, denom);
        Some(Epsilon {
            numer: u64::try_from(numer / g).ok()?,
            denom: u64::try_from(denom / g).ok()?,
        })
    }

    /// Whether `self <= other`, exactly.
    pub fn at_most(self, other: Epsilon) -> bool {
        u128::from(self.numer) * u128::from(other.denom)
            <= u128::from(other.numer) * u128::from(self.denom)
    }
}

fn gcd128(a: u128, b: u128) -> u128 {
    match b {
        0 => a,
        _ => gcd128(b, a % b),
    }
}

/// The noise a task's servers add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpStrategy {
    /// Discrete Laplace of scale Δ/ε on every value; at most `budget` spent in all.
    DiscreteLaplace {
        epsilon: Epsilon,
        budget: Option<Epsilon>,
    },
}

/// The task file's form of a strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DpFile {
    mechanism: String,
    epsilon: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    budget: Option<String>,
}

/// The L1 sensitivity of `vdaf`'s result to replacing one measurement.
pub fn sensitivity(vdaf: &VdafConfig) -> u128 {
    match *vdaf {
        VdafConfig::Count => 1,
        VdafConfig::Sum { max_measurement } => u128::from(max_measurement),
        VdafConfig::SumVec {
            length,
            max_measurement,
            ..
        } => u128::from(length) * u128::from(max_measurement),
        VdafConfig::Histogram { .. } => 2,
        VdafConfig::MultihotCountVec {
            length, max_weight, ..
        } => (2 * u128::from(max_weight)).min(u128::from(length)),
        VdafConfig::Poplar1 { .. } => 2,
    }
}

impl DpStrategy {
    pub(crate) fn from_file(file: &DpFile) -> Result<Self, String> {
        match file.mechanism.as_str() {
            "discrete_laplace" => {
                let epsilon = Epsilon::parse(&file.epsilon)?;
                let budget = match &file.budget {
                    Some(text) => Some(Epsilon::parse(text).map_err(|e| format!("budget: {e}"))?),
                    None => None,
                };
                if budget.is_some_and(|b| !epsilon.at_most(b)) {
                    return Err(format!(
                        "budget {} is below one release's epsilon {epsilon}",
                        budget.map_or(String::new(), |b| b.to_string())
                    ));
                }
                Ok(DpStrategy::DiscreteLaplace { epsilon, budget })
            }
            other => Err(format!(
                "mechanism {other:?} is not one divvi has (discrete_laplace)"
            )),
        }
    }

    pub(crate) fn to_file(self) -> DpFile {
        match self {
            DpStrategy::DiscreteLaplace { epsilon, budget } => DpFile {
                mechanism: "discrete_laplace".into(),
                epsilon: epsilon.to_string(),
                budget: budget.map(|b| b.to_string()),
            },
        }
    }

    /// What one release spends.
    pub fn epsilon(&self) -> Epsilon {
        match self {
            DpStrategy::DiscreteLaplace { epsilon, .. } => *epsilon,
        }
    }

    /// What all releases may spend together, if bounded.
    pub fn budget(&self) -> Option<Epsilon> {
        match self {
            DpStrategy::DiscreteLaplace { budget, .. } => *budget,
        }
    }

    /// The noise's scale for `vdaf`: Δ/ε.
    fn scale(&self, vdaf: &VdafConfig) -> Result<Rational, String> {
        let epsilon = self.epsilon();
        let numer = sensitivity(vdaf) * u128::from(epsilon.denom);
        Rational::from_unsigned(numer, u128::from(epsilon.numer)).map_err(|e| e.to_string())
    }

    /// How results describe the noise of a task of `vdaf`.
    pub fn describe(&self, vdaf: &VdafConfig) -> String {
        let epsilon = self.epsilon();
        let numer = sensitivity(vdaf) * u128::from(epsilon.denom);
        let denom = u128::from(epsilon.numer);
        let g = gcd128(numer, denom);
        let scale = match denom / g {
            1 => format!("{}", numer / g),
            d => format!("{}/{d}", numer / g),
        };
        let budget = match self.budget() {
            Some(b) => format!("; budget {b}"),
            None => String::new(),
        };
        format!(
            "discrete Laplace noise of scale {scale} on each value, from each server (epsilon {epsilon} per release{budget})"
        )
    }

    /// `n` noise values for a release of a task of `vdaf`, drawn from `seed`: the same
    /// seed gives the same values.
    pub fn noise(&self, vdaf: &VdafConfig, n: usize, seed: &[u8; 32]) -> Result<Vec<i64>, String> {
        match self {
            DpStrategy::DiscreteLaplace { .. } => {
                let laplace = DiscreteLaplace::new(self.scale(vdaf)?).map_err(|e| e.to_string())?;
                let mut rng = XofTurboShake128::seed_stream(seed, &[b"divvi dp noise"], &[]);
                (0..n)
                    .map(|_| {
                        i64::try_from(laplace.sample(&mut rng))
                            .map_err(|_| "a noise value beyond 64 bits".to_string())
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_reads_fractions_and_decimals_exactly() {
        for (text, shown) in [
            ("1/2", "1/2"),
            ("0.5", "1/2"),
            ("2", "2"),
            ("4/2", "2"),
            (".25", "1/4"),
            ("1.5", "3/2"),
        ] {
            assert_eq!(Epsilon::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in ["0", "0/3", "1/0", "-1", "x", "1e3", "0.0000000001", ""] {
            assert!(Epsilon::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn noise_has_the_scale_asked_and_a_seed_gives_the_same_draw() {
        let strategy = DpStrategy::DiscreteLaplace {
            epsilon: Epsilon::parse("1/2").unwrap(),
            budget: None,
        };
        // A histogram's sensitivity is 2: scale 2/(1/2) = 4.
        let vdaf = VdafConfig::Histogram {
            length: 4,
            chunk_length: 2,
        };
        let noise = strategy.noise(&vdaf, 20_000, &[1; 32]).unwrap();
        // Discrete Laplace of scale 4: mean 0, mean |x| = 2e^{-1/4}/(1 - e^{-1/2}) ≈ 3.96.
        let mean = noise.iter().sum::<i64>() as f64 / noise.len() as f64;
        let spread = noise.iter().map(|x| x.abs()).sum::<i64>() as f64 / noise.len() as f64;
        assert!(mean.abs() < 0.3, "{mean}");
        assert!((spread - 3.96).abs() < 0.3, "{spread}");
        assert!(
            strategy.describe(&vdaf).contains("scale 4 "),
            "{}",
            strategy.describe(&vdaf)
        );
        assert_eq!(strategy.noise(&vdaf, 20_000, &[1; 32]).unwrap(), noise);
        assert_ne!(strategy.noise(&vdaf, 20_000, &[2; 32]).unwrap(), noise);
        let file = strategy.to_file();
        assert_eq!(DpStrategy::from_file(&file), Ok(strategy));
    }

    #[test]
    fn sensitivities_follow_the_substitution_model() {
        let sum = VdafConfig::Sum {
            max_measurement: 255,
        };
        assert_eq!(sensitivity(&VdafConfig::Count), 1);
        assert_eq!(sensitivity(&sum), 255);
        let sumvec = VdafConfig::SumVec {
            length: 10,
            max_measurement: 3,
            chunk_length: 2,
        };
        assert_eq!(sensitivity(&sumvec), 30);
        let multihot = |length, max_weight| VdafConfig::MultihotCountVec {
            length,
            max_weight,
            chunk_length: 2,
        };
        assert_eq!(sensitivity(&multihot(10, 2)), 4);
        assert_eq!(sensitivity(&multihot(3, 2)), 3);
        assert_eq!(sensitivity(&VdafConfig::Poplar1 { bits: 8 }), 2);
    }

    #[test]
    fn budgets_add_up_exactly_and_one_below_a_release_is_refused() {
        let e = |t| Epsilon::parse(t).unwrap();
        assert_eq!(e("1/3").checked_add(e("1/6")), Some(e("1/2")));
        assert!(e("1/2").at_most(e("0.5")) && !e("0.6").at_most(e("1/2")));
        let file = |budget: &str| DpFile {
            mechanism: "discrete_laplace".into(),
            epsilon: "1".into(),
            budget: Some(budget.into()),
        };
        assert!(DpStrategy::from_file(&file("1/2")).is_err());
        assert!(DpStrategy::from_file(&file("3")).is_ok());
    }
}
