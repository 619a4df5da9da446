//! What a demo measures, as `--vdaf` names it: a Prio3 VDAF of a DAP task, or
//! `prio2:BINS` for ENPA.

use crate::dap::{DapVersion, VdafConfig};
use anyhow::{bail, Result};

/// What the demo measures: a DAP task's Prio3 VDAF, or ENPA's Prio2 histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoVdaf {
    /// ENPA: Prio2 over this many bins.
    Prio2 { bins: usize },
    /// DAP: a task of this draft with this VDAF (Prio3, or Poplar1's heavy hitters).
    Dap {
        version: DapVersion,
        vdaf: VdafConfig,
    },
}

impl std::str::FromStr for DemoVdaf {
    type Err = anyhow::Error;
    /// `prio2:BINS`, or a DAP VDAF spec as [`VdafConfig::from_spec`] reads it (of a DAP-18
    /// task; [`DemoVdaf::with_dap_version`] picks another draft).
    fn from_str(spec: &str) -> Result<Self> {
        match spec.strip_prefix("prio2:") {
            Some(bins) => match bins.parse::<usize>() {
                Ok(bins) if bins > 0 => Ok(DemoVdaf::Prio2 { bins }),
                _ => bail!("prio2:BINS: BINS must be a positive whole number, got {bins:?}"),
            },
            None if spec == "prio2" => bail!("prio2 needs its bins: prio2:BINS"),
            None => VdafConfig::from_spec(spec)
                .map(|vdaf| DemoVdaf::Dap {
                    version: DapVersion::Dap18,
                    vdaf,
                })
                .map_err(|e| anyhow::anyhow!("{e} (or prio2:BINS, ENPA's Prio2)")),
        }
    }
}

impl std::fmt::Display for DemoVdaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoVdaf::Prio2 { bins } => write!(f, "prio2:{bins}"),
            DemoVdaf::Dap { vdaf, .. } => f.write_str(&vdaf.spec()),
        }
    }
}

impl serde::Serialize for DemoVdaf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl DemoVdaf {
    /// The same VDAF in a task of DAP draft `version`; refused for ENPA's Prio2 and for a
    /// VDAF the draft does not have (DAP-09: VDAF-08, sums by bit count, no multihot).
    pub fn with_dap_version(self, version: DapVersion) -> Result<Self> {
        match self {
            DemoVdaf::Prio2 { .. } if version == DapVersion::Dap18 => Ok(self),
            DemoVdaf::Prio2 { .. } => bail!("prio2 is ENPA's VDAF, not a DAP task's"),
            DemoVdaf::Dap { vdaf, .. } => {
                vdaf.validate_for(version, "vdaf")?;
                Ok(DemoVdaf::Dap { version, vdaf })
            }
        }
    }

    /// What the result is, as the summary line says it.
    /// Whether this is a heavy-hitters task (its demo runs passes, not one collection).
    pub fn is_heavy_hitters(&self) -> bool {
        matches!(
            self,
            DemoVdaf::Dap {
                vdaf: VdafConfig::Poplar1 { .. },
                ..
            }
        )
    }

    pub fn what(&self) -> &'static str {
        match self {
            DemoVdaf::Prio2 { .. } => "histogram",
            DemoVdaf::Dap { vdaf, .. } => match vdaf {
                VdafConfig::Count => "count",
                VdafConfig::Sum { .. } => "sum",
                VdafConfig::SumVec { .. } => "vector sum",
                VdafConfig::Histogram { .. } => "histogram",
                VdafConfig::MultihotCountVec { .. } => "count vector",
                VdafConfig::Poplar1 { .. } => "list of heavy hitters",
            },
        }
    }

    /// The name of a row of a vector result; `None` for one number (count, sum).
    pub fn row(&self) -> Option<&'static str> {
        match self {
            DemoVdaf::Prio2 { .. } => Some("bin"),
            DemoVdaf::Dap { vdaf, .. } => match vdaf {
                VdafConfig::Count | VdafConfig::Sum { .. } => None,
                VdafConfig::Histogram { .. } => Some("bucket"),
                VdafConfig::SumVec { .. } | VdafConfig::MultihotCountVec { .. } => Some("index"),
                VdafConfig::Poplar1 { .. } => Some("string"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_pipeline_and_read_back() {
        assert_eq!(
            "prio2:16".parse::<DemoVdaf>().unwrap(),
            DemoVdaf::Prio2 { bins: 16 }
        );
        for spec in [
            "prio2:16",
            "count",
            "sum:9",
            "histogram:16",
            "multihot:4:2:2",
            "poplar1:64",
        ] {
            let vdaf: DemoVdaf = spec.parse().unwrap();
            assert_eq!(
                vdaf.to_string().parse::<DemoVdaf>().unwrap(),
                vdaf,
                "{spec}"
            );
        }
        assert_eq!(
            "histogram:16".parse::<DemoVdaf>().unwrap().row(),
            Some("bucket")
        );
        assert_eq!("sum:9".parse::<DemoVdaf>().unwrap().row(), None);
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, says) in [
            ("prio2", "prio2:BINS"),
            ("prio2:0", "positive"),
            ("prio2:x", "positive"),
            ("histo:4", "prio2:BINS"),
            ("histogram:0", "vdaf"),
            ("poplar1:12", "multiple of 8"),
        ] {
            let err = spec.parse::<DemoVdaf>().unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
        }
    }
}
