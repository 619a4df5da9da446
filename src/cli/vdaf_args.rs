//! `--vdaf`, `--bins` and `--scheme`: what `demo` and `bench` run, read the same way by both.

use anyhow::{bail, Result};
use clap::Args;
use divvi::crypto::PacketScheme;
use divvi::demo::DemoVdaf;

/// What runs when neither --vdaf nor --bins is given: the modern pipeline.
const DEFAULT_VDAF: &str = "histogram:16";

#[derive(Args)]
pub(super) struct VdafArgs {
    /// What to measure. A DAP-18 task with a Prio3 VDAF, whose reports the client
    /// library seals so the ingestor never sees a measurement: count, sum:MAX,
    /// sumvec:LENGTH:MAX, histogram:LENGTH or multihot:LENGTH:MAX_WEIGHT (the vector kinds
    /// take an optional :CHUNK; sumvec's MAX is the largest value of an entry, VDAF-18's
    /// max_measurement, not a bit count). Or prio2:BINS: the ENPA pipeline
    /// [default: histogram:16]
    #[arg(long, value_name = "VDAF")]
    vdaf: Option<DemoVdaf>,
    /// The ENPA pipeline over BINS bins: shorthand for --vdaf prio2:BINS, refused with
    /// --vdaf.
    #[arg(long, value_name = "BINS", conflicts_with = "vdaf")]
    bins: Option<usize>,
    /// ENPA packet encryption (prio2 only; DAP reports are sealed with the task's HPKE
    /// keys) [default: ecies]
    #[arg(long)]
    scheme: Option<PacketScheme>,
    /// The DAP draft of the task: 18, or 09 (what deployed clients speak: VDAF-08, sum
    /// and sumvec maxima 2^bits - 1, no multihot) [default: 18]
    #[arg(long, value_name = "VERSION")]
    dap_version: Option<divvi::dap::DapVersion>,
}

impl VdafArgs {
    /// The VDAF asked for and the ENPA packet scheme (ECIES unless asked; unused by DAP).
    pub(super) fn resolve(&self) -> Result<(DemoVdaf, PacketScheme)> {
        let vdaf = match (&self.vdaf, self.bins) {
            (Some(vdaf), _) => vdaf.clone(),
            (None, Some(0)) => bail!("--bins must be positive"),
            (None, Some(bins)) => DemoVdaf::Prio2 { bins },
            (None, None) => DEFAULT_VDAF.parse()?,
        };
        let vdaf = match self.dap_version {
            Some(version) => vdaf.with_dap_version(version)?,
            None => vdaf,
        };
        let scheme = match (&vdaf, self.scheme) {
            (DemoVdaf::Dap { .. }, Some(_)) => bail!(
                "--scheme sets ENPA packet encryption (--vdaf prio2:BINS); a DAP task's reports are sealed with its HPKE keys"
            ),
            (_, scheme) => scheme.unwrap_or(PacketScheme::Ecies),
        };
        Ok((vdaf, scheme))
    }
}
