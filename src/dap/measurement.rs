//! A client's measurement, and how one is read from JSON for a given VDAF (one JSON value
//! per report in `divvi client`'s input).

use serde_json::Value;

use super::task::VdafConfig;

/// A client's measurement, one variant per VDAF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measurement {
    /// Count: did the event happen.
    Count(bool),
    /// Sum: an integer in `0..=max_measurement`.
    Sum(u64),
    /// SumVec: `length` integers, each in `0..=max_measurement`.
    SumVec(Vec<u128>),
    /// Histogram: a bucket index below `length`.
    Histogram(usize),
    /// MultihotCountVec: `length` flags with at most `max_weight` of them set.
    Multihot(Vec<bool>),
}

/// A measurement that does not fit the task's VDAF; says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{vdaf} measurement: {reason}")]
pub struct MeasurementError {
    pub vdaf: &'static str,
    pub reason: String,
}

impl Measurement {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Measurement::Count(_) => "count",
            Measurement::Sum(_) => "sum",
            Measurement::SumVec(_) => "sumvec",
            Measurement::Histogram(_) => "histogram",
            Measurement::Multihot(_) => "multihot",
        }
    }

    /// Reads a measurement for `vdaf`: count `true`/`false` or 0/1; sum an integer up to
    /// max_measurement; sumvec an array of `length` such integers; histogram a bucket index
    /// below `length`; multihot an array of `length` booleans (or 0/1) with at most
    /// max_weight set.
    pub fn from_json(vdaf: &VdafConfig, value: &Value) -> Result<Self, MeasurementError> {
        let bad = |reason: String| MeasurementError {
            vdaf: vdaf.name(),
            reason,
        };
        let int = |v: &Value, max: u64, what: &str| -> Result<u64, MeasurementError> {
            match v.as_u64() {
                Some(n) if n <= max => Ok(n),
                Some(n) => Err(bad(format!("{what} {n} is above the maximum {max}"))),
                None => Err(bad(format!(
                    "{what} must be a whole number 0..={max}, got {v}"
                ))),
            }
        };
        let flag = |v: &Value, what: &str| -> Result<bool, MeasurementError> {
            match v {
                Value::Bool(b) => Ok(*b),
                _ => match v.as_u64() {
                    Some(0) => Ok(false),
                    Some(1) => Ok(true),
                    _ => Err(bad(format!("{what} must be true, false, 0 or 1, got {v}"))),
                },
            }
        };
        let array = |length: u32| -> Result<&Vec<Value>, MeasurementError> {
            match value.as_array() {
                Some(items) if items.len() == length as usize => Ok(items),
                Some(items) => Err(bad(format!(
                    "expected an array of {length} entries, got {}",
                    items.len()
                ))),
                None => Err(bad(format!(
                    "expected an array of {length} entries, got {value}"
                ))),
            }
        };
        Ok(match *vdaf {
            VdafConfig::Count => Measurement::Count(flag(value, "the value")?),
            VdafConfig::Sum { max_measurement } => {
                Measurement::Sum(int(value, max_measurement, "the value")?)
            }
            VdafConfig::SumVec {
                length,
                max_measurement,
                ..
            } => Measurement::SumVec(
                array(length)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| int(v, max_measurement, &format!("entry {i}")).map(u128::from))
                    .collect::<Result<_, _>>()?,
            ),
            VdafConfig::Histogram { length, .. } => {
                let bucket = int(value, u64::from(length).saturating_sub(1), "bucket index")?;
                Measurement::Histogram(bucket as usize)
            }
            VdafConfig::MultihotCountVec {
                length, max_weight, ..
            } => {
                let flags = array(length)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| flag(v, &format!("entry {i}")))
                    .collect::<Result<Vec<bool>, _>>()?;
                let weight = flags.iter().filter(|&&b| b).count() as u64;
                if weight > max_weight {
                    return Err(bad(format!(
                        "{weight} entries are set, above max_weight {max_weight}"
                    )));
                }
                Measurement::Multihot(flags)
            }
        })
    }
}
