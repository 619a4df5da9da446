//! `divvi keygen`: keys and matching configs for a new deployment.

use anyhow::Result;
use clap::Args;
use divvi::crypto::PacketScheme;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where keygen (and the demo) put the locations: local folders unless an S3 endpoint or
/// region is given.
#[derive(Args)]
pub(super) struct LayoutArgs {
    /// Use buckets on this S3-compatible endpoint (e.g. http://127.0.0.1:8333).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Use buckets on AWS S3 in this region (or the endpoint's region).
    #[arg(long)]
    s3_region: Option<String>,
    /// Path-style addressing (most S3-compatible servers need it).
    #[arg(long)]
    s3_path_style: bool,
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
}

impl LayoutArgs {
    pub(super) fn layout(&self) -> divvi::keygen::Layout {
        use divvi::keygen::{Layout, S3Layout};
        if self.s3_endpoint.is_none() && self.s3_region.is_none() {
            return Layout::Local;
        }
        Layout::S3(S3Layout {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
            path_style: self.s3_path_style,
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
    let d = divvi::keygen::keygen(&a.out, a.scheme, &a.instance, &a.layout.layout(), limits)?;
    out!("wrote keys to {}/keys and configs:", d.dir.display());
    for p in [&d.ingestor, &d.servers[0], &d.servers[1], &d.portal] {
        out!("  {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
