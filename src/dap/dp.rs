//! A task's differential privacy: the noise each server adds to its own aggregate share
//! before it seals it to the collector, so that neither the collector nor the other
//! server learns an exact count from it. One strategy so far, for Poplar1's per-prefix
//! counts: discrete Laplace noise (the `prio` crate's sampler, [CKS20]) of scale 1/ε on
//! every count. A report adds 1 to at most one prefix of a pass (a level's prefixes are
//! disjoint), so each pass's counts are ε-differentially private from each server's
//! noise alone; a traversal of P passes spends P·ε (basic composition).
//!
//! In the task file: `"dp": {"mechanism": "discrete_laplace", "epsilon": "1/2"}` (ε as
//! a fraction or a decimal: "1/2", "0.5", "2").

use prio::dp::distributions::DiscreteLaplace;
use prio::dp::Rational;
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

/// The noise a task's servers add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpStrategy {
    /// Discrete Laplace of scale 1/ε on every count.
    DiscreteLaplace { epsilon: Epsilon },
}

/// The task file's form of a strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DpFile {
    mechanism: String,
    epsilon: String,
}

impl DpStrategy {
    pub(crate) fn from_file(file: &DpFile) -> Result<Self, String> {
        match file.mechanism.as_str() {
            "discrete_laplace" => Ok(DpStrategy::DiscreteLaplace {
                epsilon: Epsilon::parse(&file.epsilon)?,
            }),
            other => Err(format!(
                "mechanism {other:?} is not one divvi has (discrete_laplace)"
            )),
        }
    }

    pub(crate) fn to_file(self) -> DpFile {
        match self {
            DpStrategy::DiscreteLaplace { epsilon } => DpFile {
                mechanism: "discrete_laplace".into(),
                epsilon: epsilon.to_string(),
            },
        }
    }

    /// How results describe the noise.
    pub fn describe(&self) -> String {
        match self {
            DpStrategy::DiscreteLaplace { epsilon } => {
                let scale = Epsilon {
                    numer: epsilon.denom,
                    denom: epsilon.numer,
                };
                format!(
                    "discrete Laplace noise of scale {scale} on each count, from each server (epsilon {epsilon} per pass)"
                )
            }
        }
    }

    /// `n` fresh noise values, one per count.
    pub fn noise(&self, n: usize) -> Result<Vec<i64>, String> {
        match self {
            DpStrategy::DiscreteLaplace { epsilon } => {
                // Scale 1/ε = denom/numer.
                let scale = Rational::from_unsigned(epsilon.denom, epsilon.numer)
                    .map_err(|e| e.to_string())?;
                let laplace = DiscreteLaplace::new(scale).map_err(|e| e.to_string())?;
                let mut rng = rand::rng();
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
    fn noise_has_the_scale_asked() {
        let strategy = DpStrategy::DiscreteLaplace {
            epsilon: Epsilon::parse("1/4").unwrap(),
        };
        let noise = strategy.noise(20_000).unwrap();
        // Discrete Laplace of scale 4: mean 0, mean |x| = 2e^{-1/4}/(1 - e^{-1/2}) ≈ 3.96.
        let mean = noise.iter().sum::<i64>() as f64 / noise.len() as f64;
        let spread = noise.iter().map(|x| x.abs()).sum::<i64>() as f64 / noise.len() as f64;
        assert!(mean.abs() < 0.3, "{mean}");
        assert!((spread - 3.96).abs() < 0.3, "{spread}");
        assert!(
            strategy.describe().contains("scale 4 "),
            "{}",
            strategy.describe()
        );
        let file = strategy.to_file();
        assert_eq!(DpStrategy::from_file(&file), Ok(strategy));
    }
}
