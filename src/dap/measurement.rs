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
    /// Poplar1: a string of 1 to `bits / 8` bytes, none of them zero (the client pads
    /// with zeros to the task's length, so a zero byte would be ambiguous).
    String(Vec<u8>),
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
            Measurement::String(_) => "poplar1",
        }
    }

    /// Reads a measurement for `vdaf`: count `true`/`false` or 0/1; sum an integer up to
    /// max_measurement; sumvec an array of `length` such integers; histogram a bucket index
    /// below `length`; multihot an array of `length` booleans (or 0/1) with at most
    /// max_weight set; poplar1 a JSON string of 1 to bits/8 bytes (UTF-8) with no NUL.
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
            VdafConfig::Poplar1 { bits } => match value.as_str() {
                Some(text) => Measurement::string(text.as_bytes(), bits).map_err(bad)?,
                None => return Err(bad(format!("expected a JSON string, got {value}"))),
            },
        })
    }

    /// A Poplar1 measurement of `bits`: 1 to bits/8 bytes, no zero byte; or why not.
    pub fn string(bytes: &[u8], bits: u16) -> Result<Self, String> {
        super::poplar1::check_string(bytes, usize::from(bits))?;
        Ok(Measurement::String(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(spec: &str, value: Value) -> Result<Measurement, MeasurementError> {
        Measurement::from_json(&VdafConfig::from_spec(spec).unwrap(), &value)
    }

    #[test]
    fn measurements_of_each_vdaf() {
        assert_eq!(parse("count", json!(true)), Ok(Measurement::Count(true)));
        assert_eq!(parse("count", json!(0)), Ok(Measurement::Count(false)));
        assert_eq!(parse("sum:10", json!(10)), Ok(Measurement::Sum(10)));
        assert_eq!(
            parse("sumvec:2:3", json!([3, 0])),
            Ok(Measurement::SumVec(vec![3, 0]))
        );
        assert_eq!(
            parse("histogram:4", json!(3)),
            Ok(Measurement::Histogram(3))
        );
        assert_eq!(
            parse("multihot:3:2", json!([true, 0, 1])),
            Ok(Measurement::Multihot(vec![true, false, true]))
        );
        assert_eq!(
            parse("poplar1:32", json!("hé")),
            Ok(Measurement::String("hé".as_bytes().to_vec()))
        );
    }

    #[test]
    fn bad_measurements_say_why() {
        for (spec, value, says) in [
            ("count", json!(2), "true, false, 0 or 1"),
            ("count", json!("yes"), "true, false, 0 or 1"),
            ("sum:10", json!(11), "above the maximum 10"),
            ("sum:10", json!(-1), "whole number"),
            ("sumvec:2:3", json!([1]), "array of 2 entries"),
            ("sumvec:2:3", json!([1, 4]), "entry 1 4 is above"),
            (
                "histogram:4",
                json!(4),
                "bucket index 4 is above the maximum 3",
            ),
            ("multihot:3:1", json!([1, 1, 0]), "above max_weight 1"),
            ("multihot:3:2", json!([1, 2, 0]), "entry 1 must be"),
            ("poplar1:16", json!("abc"), "3 bytes, expected 1 to 2"),
            ("poplar1:16", json!(""), "0 bytes"),
            ("poplar1:16", json!("a\u{0}"), "NUL"),
            ("poplar1:16", json!(7), "a JSON string"),
        ] {
            let err = parse(spec, value).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
        }
    }
}
