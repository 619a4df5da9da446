//! The Prio2 parameters every ENPA header carries (ingestion, validation and sum part):
//! one struct, so they are read and compared in one place.

use super::{IngestionHeader, SumPart, ValidityHeader};

#[derive(Debug, Clone, Copy)]
pub struct Prio2Parameters {
    pub bins: i32,
    pub epsilon: f64,
    pub prime: i64,
    pub number_of_servers: i32,
    pub hamming_weight: Option<i32>,
}

impl Prio2Parameters {
    /// Each field that differs, as `name mine vs theirs`.
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut field = |name: &str, same: bool, mine: String, theirs: String| {
            if !same {
                diffs.push(format!("{name} {mine} vs {theirs}"));
            }
        };
        field(
            "bins",
            self.bins == other.bins,
            self.bins.to_string(),
            other.bins.to_string(),
        );
        field(
            "epsilon",
            self.epsilon.to_bits() == other.epsilon.to_bits(),
            self.epsilon.to_string(),
            other.epsilon.to_string(),
        );
        field(
            "prime",
            self.prime == other.prime,
            self.prime.to_string(),
            other.prime.to_string(),
        );
        field(
            "number_of_servers",
            self.number_of_servers == other.number_of_servers,
            self.number_of_servers.to_string(),
            other.number_of_servers.to_string(),
        );
        field(
            "hamming_weight",
            self.hamming_weight == other.hamming_weight,
            format!("{:?}", self.hamming_weight),
            format!("{:?}", other.hamming_weight),
        );
        diffs
    }
}

impl PartialEq for Prio2Parameters {
    /// Epsilon by its bits: headers carry it exactly as the ingestor declared it.
    fn eq(&self, other: &Self) -> bool {
        self.differences(other).is_empty()
    }
}

impl std::fmt::Display for Prio2Parameters {
    /// The fields that vary between deployments (prime and number_of_servers are fixed).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bins {}, epsilon {}, hamming_weight {:?}",
            self.bins, self.epsilon, self.hamming_weight
        )
    }
}

macro_rules! parameters_of {
    ($($record:ty),*) => {$(
        impl $record {
            pub fn parameters(&self) -> Prio2Parameters {
                Prio2Parameters {
                    bins: self.bins,
                    epsilon: self.epsilon,
                    prime: self.prime,
                    number_of_servers: self.number_of_servers,
                    hamming_weight: self.hamming_weight,
                }
            }
        }
    )*};
}

parameters_of!(IngestionHeader, ValidityHeader, SumPart);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_differing_field_is_named_and_epsilon_compares_by_bits() {
        let a = Prio2Parameters {
            bins: 3,
            epsilon: 1.0,
            prime: 4_293_918_721,
            number_of_servers: 2,
            hamming_weight: None,
        };
        assert_eq!(a, a);
        let b = Prio2Parameters {
            bins: 4,
            epsilon: -0.0,
            hamming_weight: Some(1),
            ..a
        };
        assert_eq!(
            a.differences(&b),
            [
                "bins 3 vs 4",
                "epsilon 1 vs -0",
                "hamming_weight None vs Some(1)"
            ]
        );
        let zero = Prio2Parameters { epsilon: 0.0, ..a };
        assert_ne!(zero, Prio2Parameters { epsilon: -0.0, ..a });
    }
}
