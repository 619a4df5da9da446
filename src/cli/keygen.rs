//! `divvi keygen`: keys and matching configs for a new deployment.

use anyhow::Result;
use clap::Args;
use divvi::crypto::PacketScheme;
use std::path::PathBuf;
use std::process::ExitCode;

/// How to reach S3 or an S3-compatible server (keygen's and the demo's buckets, an
/// object `inspect` reads); credentials come from the standard AWS chain.
#[derive(Args)]
pub(super) struct S3Access {
    /// An S3-compatible endpoint (e.g. http://127.0.0.1:8333); AWS S3 without it.
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// The region of AWS S3 (or the endpoint's region).
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Path-style addressing (most S3-compatible servers need it).
    #[arg(long)]
    pub s3_path_style: bool,
}

/// Where keygen (and the demo) put the locations: local folders unless an S3 endpoint or
/// region is given.
#[derive(Args)]
pub(super) struct LayoutArgs {
    #[command(flatten)]
    s3: S3Access,
    /// Prefix of every bucket name.
    #[arg(long, default_value = "divvi-")]
    s3_bucket_prefix: String,
    /// Reach each party's locations with its own AWS profile (ingestor, server0,
    /// server0-to-server1, server1, server1-to-server0, portal).
    #[arg(long)]
    s3_profiles: bool,
}

#[derive(Args)]
pub(super) struct KeygenArgs {
    /// A new (or empty) folder to write keys/ and the four configs into.
    #[arg(long)]
    out: PathBuf,
    /// Packet encryption for the servers' keys.
    #[arg(long, default_value = "hpke")]
    scheme: PacketScheme,
    /// Deployment name, the first part of sum-part object names.
    #[arg(long, default_value = "divvi")]
    instance: String,
    /// Runs with fewer valid clients write no sum part (privacy floor, in the configs).
    #[arg(long, default_value_t = 100)]
    min_clients: u64,
    #[command(flatten)]
    layout: LayoutArgs,
    #[command(flatten)]
    dap: DapArgs,
}

/// A DAP task beside the ENPA keys: only with --vdaf.
#[derive(Args)]
pub(super) struct DapArgs {
    /// Also make a DAP task with this Prio3 VDAF (count, sum:MAX, histogram:LEN, ...):
    /// task.json, each server's and the collector's HPKE key, the servers' verify key.
    #[arg(long)]
    vdaf: Option<divvi::dap::VdafConfig>,
    /// The DAP draft the task's clients speak: 18 (current), or 09 (what Firefox,
    /// @divviup/dap 0.9 and janus_client 0.7 send; VDAF-08, sum maxima 2^bits - 1).
    #[arg(long, default_value = "18", requires = "vdaf")]
    dap_version: divvi::dap::task::DapVersion,
    /// The task's time precision in seconds (report times are rounded down to it).
    #[arg(long, default_value_t = 3600, requires = "vdaf")]
    time_precision: u64,
    /// The task's minimum batch size.
    #[arg(long, default_value_t = 100, requires = "vdaf")]
    min_batch_size: u64,
    /// The leader's (server 0's) DAP endpoint, as bound into every report.
    #[arg(long, default_value = "https://leader.invalid/", requires = "vdaf")]
    leader_endpoint: String,
    /// The helper's (server 1's) DAP endpoint.
    #[arg(long, default_value = "https://helper.invalid/", requires = "vdaf")]
    helper_endpoint: String,
    /// Differential privacy: each server adds discrete Laplace noise of scale
    /// sensitivity/EPSILON to every value it releases (a run's sum part, a heavy-hitters
    /// pass); EPSILON as N/D or a decimal, spent per release.
    #[arg(long, value_name = "EPSILON", requires = "vdaf")]
    dp_epsilon: Option<String>,
    /// Differential privacy: the most epsilon a task's releases may spend in all; each
    /// server refuses a release beyond it.
    #[arg(long, value_name = "EPSILON", requires = "dp_epsilon")]
    dp_budget: Option<String>,
}

impl DapArgs {
    fn options(&self) -> anyhow::Result<Option<divvi::keygen::DapTaskOptions>> {
        use divvi::dap::dp::{DpStrategy, Epsilon};
        let dp = match &self.dp_epsilon {
            Some(text) => Some(DpStrategy::DiscreteLaplace {
                epsilon: Epsilon::parse(text).map_err(|e| anyhow::anyhow!("--dp-epsilon: {e}"))?,
                budget: match &self.dp_budget {
                    Some(budget) => Some(
                        Epsilon::parse(budget).map_err(|e| anyhow::anyhow!("--dp-budget: {e}"))?,
                    ),
                    None => None,
                },
            }),
            None => None,
        };
        Ok(self.vdaf.clone().map(|vdaf| divvi::keygen::DapTaskOptions {
            dap_version: self.dap_version,
            vdaf,
            time_precision: self.time_precision,
            min_batch_size: self.min_batch_size,
            leader_endpoint: self.leader_endpoint.clone(),
            helper_endpoint: self.helper_endpoint.clone(),
            dp,
        }))
    }
}

impl LayoutArgs {
    pub(super) fn layout(&self) -> divvi::keygen::Layout {
        use divvi::keygen::{Layout, S3Layout};
        if self.s3.s3_endpoint.is_none() && self.s3.s3_region.is_none() {
            return Layout::Local;
        }
        Layout::S3(S3Layout {
            endpoint: self.s3.s3_endpoint.clone(),
            region: self
                .s3
                .s3_region
                .clone()
                .unwrap_or_else(|| "us-east-1".into()),
            path_style: self.s3.s3_path_style,
            bucket_prefix: self.s3_bucket_prefix.clone(),
            profiles: self.s3_profiles,
        })
    }
}

pub fn keygen_command(a: KeygenArgs) -> Result<ExitCode> {
    let limits = divvi::config::Limits {
        min_clients: a.min_clients,
        ..Default::default()
    };
    let dap = a.dap.options()?;
    let d = divvi::keygen::keygen_with_dap(
        &a.out,
        a.scheme,
        &a.instance,
        &a.layout.layout(),
        limits,
        dap.as_ref(),
    )?;
    out!("wrote keys to {}/keys and configs:", d.dir.display());
    for p in [&d.ingestor, &d.servers[0], &d.servers[1], &d.portal] {
        out!("  {}", p.display());
    }
    if dap.is_some() {
        out!("and a DAP-18 task: {}", d.dir.join("task.json").display());
    }
    Ok(ExitCode::SUCCESS)
}
