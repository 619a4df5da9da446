//! `divvi keygen`: keys and matching configs for a new deployment.

use anyhow::{anyhow, bail, Context, Result};
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

impl S3Access {
    /// The store and key of an object named `s3://BUCKET/KEY`, read or written with
    /// `profile` (the standard AWS chain without one); None for any other name.
    pub(super) fn object(
        &self,
        name: &str,
        profile: Option<String>,
    ) -> Result<Option<(Box<dyn divvi::store::ObjectStore>, String)>> {
        let Some(rest) = name.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| anyhow!("{name}: an object on S3 is s3://BUCKET/KEY"))?;
        let settings = divvi::store::LocationSettings {
            url: format!("s3://{bucket}"),
            region: self.s3_region.clone(),
            endpoint: self.s3_endpoint.clone(),
            path_style: self.s3_path_style,
            profile,
            role_arn: None,
        };
        let location = divvi::store::LocationConfig::Detailed(settings);
        let store = divvi::store::open_location(&location, std::path::Path::new("."))
            .map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(Some((store, key.to_string())))
    }
}

/// Where keygen (and the demo) put the locations: local folders unless an S3 endpoint or
/// region is given.
#[derive(Args)]
pub(super) struct LayoutArgs {
    #[command(flatten)]
    pub(super) s3: S3Access,
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
    /// A new (or empty) folder to write keys/ and the four configs into (with --party:
    /// that party's keys, manifest and, once its peers are imported, config).
    #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
    out: Option<PathBuf>,
    /// Make one party's keys only (each operator runs keygen for its own party), and a
    /// public manifest to hand to the others: ingestor, server0, server1 or portal. The
    /// portal defines the DAP task (--vdaf and the task's flags).
    #[arg(long, value_name = "PARTY")]
    party: Option<divvi::keygen::manifest::Party>,
    /// With --party: also put the manifest at s3://BUCKET/PREFIX/PARTY.manifest.json, where
    /// the others can read it (credentials from the standard AWS chain).
    #[arg(long, value_name = "S3_PREFIX", requires = "party")]
    publish: Option<String>,
    /// Import other parties' manifests (files, or s3://BUCKET/KEY objects) into the
    /// folder --dir that `keygen --party` made; the party's config is written once every
    /// manifest it needs is in.
    #[arg(long, value_name = "MANIFEST", num_args = 1.., requires = "dir", conflicts_with_all = [
        "party", "scheme", "instance", "min_clients", "vdaf",
    ])]
    import: Vec<String>,
    /// The party's folder, as `keygen --party --out` made it: for --import, --new-key,
    /// --use-key and --retire-key.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rotation, step 1: a new key of this kind beside the old one (signing, or a
    /// server's packet key); hand the new manifest to the others.
    #[arg(long, value_name = "KIND", requires = "dir", conflicts_with_all = ["import", "use_key", "retire_key"])]
    new_key: Option<divvi::keygen::rotate::KeyKind>,
    /// Rotation, step 2: sign with this key (once the others have imported the manifest
    /// that lists it).
    #[arg(long, value_name = "ID", requires = "dir", conflicts_with_all = ["import", "retire_key"])]
    use_key: Option<String>,
    /// With --use-key: how many hours the key signed with until now stays trusted (its
    /// not_after in the manifest). Cover every batch it signed until both servers have
    /// aggregated it: the aggregate lookback (72 h) and a day by default.
    #[arg(long, value_name = "HOURS", default_value_t = 96, requires = "use_key")]
    overlap_hours: u32,
    /// Rotation, step 3: after the overlap, drop this key from the manifest and delete its
    /// secret; hand the new manifest to the others.
    #[arg(long, value_name = "ID", requires = "dir", conflicts_with = "import")]
    retire_key: Option<String>,
    /// With --import of one manifest: its SHA-256 as its party told you over a channel
    /// you trust; a manifest with another is refused.
    #[arg(long, value_name = "SHA256", requires = "import")]
    fingerprint: Option<String>,
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
    if let Some(dir) = &a.dir {
        return party_folder(&a, dir);
    }
    let Some(out) = &a.out else {
        bail!("keygen needs --out (or --import with --dir)");
    };
    let limits = divvi::config::Limits {
        min_clients: a.min_clients,
        ..Default::default()
    };
    let dap = a.dap.options()?;
    if let Some(party) = a.party {
        return keygen_party(&a, out, party, limits, dap.as_ref());
    }
    let d = divvi::keygen::keygen_with_dap(
        out,
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

/// `keygen --party`: one party's keys and its manifest (published to S3 if asked).
fn keygen_party(
    a: &KeygenArgs,
    out: &std::path::Path,
    party: divvi::keygen::manifest::Party,
    limits: divvi::config::Limits,
    dap: Option<&divvi::keygen::DapTaskOptions>,
) -> Result<ExitCode> {
    use divvi::keygen::party::{keygen_party, PartyOptions};
    let layout = a.layout.layout();
    let state = keygen_party(
        out,
        &PartyOptions {
            party,
            scheme: a.scheme,
            instance: &a.instance,
            layout: &layout,
            limits,
            dap,
        },
    )?;
    out!("wrote {party}'s keys to {}/keys", out.display());
    out!(
        "its manifest, to hand to the others: {}",
        state.manifest.display()
    );
    if let Some(prefix) = &a.publish {
        let name = format!(
            "{}/{}",
            prefix.trim_end_matches('/'),
            divvi::keygen::manifest::file_name(party)
        );
        let (store, key) = a
            .layout
            .s3
            .object(&name, None)?
            .ok_or_else(|| anyhow!("--publish takes s3://BUCKET/PREFIX, got {prefix}"))?;
        let bytes = std::fs::read(&state.manifest)?;
        divvi::store::put_bytes(store.as_ref(), &key, &bytes)
            .map_err(|e| anyhow!("publishing the manifest to {name}: {e}"))?;
        out!("published: {name}");
    }
    print_state(&state);
    Ok(ExitCode::SUCCESS)
}

/// `keygen --dir`: imports, or a step of a key rotation, in a party's folder.
fn party_folder(a: &KeygenArgs, dir: &std::path::Path) -> Result<ExitCode> {
    use divvi::keygen::rotate;
    let state = if !a.import.is_empty() {
        return import(a, dir);
    } else if let Some(kind) = a.new_key {
        let (id, state) = rotate::new_key(dir, kind)?;
        out!("new key {id}, beside the old; hand the manifest to the others");
        state
    } else if let Some(id) = &a.use_key {
        let overlap = chrono::Duration::hours(i64::from(a.overlap_hours));
        let state = rotate::use_key(dir, id, overlap)?;
        out!(
            "{} now signs with {id}; the key before stays trusted {} h more; hand the manifest to the others",
            state.party,
            a.overlap_hours
        );
        state
    } else if let Some(id) = &a.retire_key {
        let state = rotate::retire_key(dir, id)?;
        out!("{id} retired and its secret deleted; hand the manifest to the others");
        state
    } else {
        bail!("--dir goes with --import, --new-key, --use-key or --retire-key");
    };
    print_state(&state);
    Ok(ExitCode::SUCCESS)
}

/// `keygen --import`: other parties' manifests into a party's folder.
fn import(a: &KeygenArgs, dir: &std::path::Path) -> Result<ExitCode> {
    if a.fingerprint.is_some() && a.import.len() != 1 {
        bail!("--fingerprint checks one manifest: import the others one at a time");
    }
    // The folder first: a manifest is no use without the party it goes to.
    divvi::keygen::party::state(dir)?;
    let mut state = None;
    for source in &a.import {
        let bytes = match a.layout.s3.object(source, None)? {
            Some((store, key)) => divvi::store::get_bytes(store.as_ref(), &key, MANIFEST_LIMIT)
                .map_err(|e| anyhow!("reading manifest {source}: {e}"))?,
            None => std::fs::read(source).with_context(|| format!("reading manifest {source}"))?,
        };
        let imported = divvi::keygen::party::import(dir, source, &bytes, a.fingerprint.as_deref())?;
        out!(
            "imported {source} (SHA-256 {})",
            divvi::keygen::manifest::fingerprint(&bytes)
        );
        state = Some(imported);
    }
    if let Some(state) = state {
        print_state(&state);
    }
    Ok(ExitCode::SUCCESS)
}

/// A manifest is a few KB; anything much larger is not one.
const MANIFEST_LIMIT: u64 = 1 << 20;

fn print_state(state: &divvi::keygen::party::PartyState) {
    out!("{}'s manifest SHA-256: {}", state.party, state.fingerprint);
    match (&state.config, state.missing.is_empty()) {
        (Some(config), true) => {
            out!("config: {}", config.display());
            if let Some(task) = &state.task {
                out!("DAP task: {}", task.display());
            }
        }
        _ => {
            let missing: Vec<String> = state.missing.iter().map(|p| p.to_string()).collect();
            out!(
                "still to import (keygen --import MANIFEST --dir {}): {}",
                state.dir.display(),
                missing.join(", ")
            );
        }
    }
}
