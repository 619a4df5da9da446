//! `divvi inspect`: any ENPA or DAP object, a file or an object on S3, as JSON, with
//! signature and digest verdicts.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use divvi::config::{read_config, PortalConfig, ServerConfig};
use divvi::crypto::{TrustSet, VerifyingKey};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct InspectArgs {
    /// The object: a file, or s3://BUCKET/KEY (credentials from the standard AWS chain;
    /// its neighbours, the header and packet file, are read from the same bucket).
    file: PathBuf,
    #[command(flatten)]
    s3: super::keygen::S3Access,
    /// For s3:// objects: the AWS shared-config profile to read with.
    #[arg(long)]
    s3_profile: Option<String>,
    /// A trusted signing key, as ID=BASE64 (SPKI or raw point); repeatable.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Trust the signing keys a server or portal config trusts (and a server's own).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Show at most this many records.
    #[arg(long, default_value_t = usize::MAX)]
    limit: usize,
}

pub(super) fn inspect_trust(a: &InspectArgs) -> Result<Option<TrustSet>> {
    if a.keys.is_empty() && a.config.is_none() {
        return Ok(None);
    }
    let mut trust = TrustSet::new();
    for k in &a.keys {
        let (id, key) = k
            .split_once('=')
            .ok_or_else(|| anyhow!("--key takes ID=BASE64"))?;
        trust.insert(
            id,
            VerifyingKey::from_base64(key).with_context(|| format!("--key {id}"))?,
        );
    }
    if let Some(path) = &a.config {
        if let Ok((c, base)) = read_config::<ServerConfig>(path) {
            for set in [&c.trust.ingestors, &c.trust.peer] {
                for k in set {
                    trust.insert(&k.id, VerifyingKey::from_base64(&k.public_key)?);
                }
            }
            // Read for its public half only: an open key file draws a warning here.
            let own = c
                .signing_key
                .load(&base, divvi::config::KeyFileCheck::Warn)?;
            trust.insert(own.key_id(), own.verifying_key());
        } else {
            let (c, _): (PortalConfig, _) =
                read_config(path).context("--config is neither a server nor a portal config")?;
            for s in &c.servers {
                for k in &s.signing_keys {
                    trust.insert(&k.id, VerifyingKey::from_base64(&k.public_key)?);
                }
            }
        }
    }
    Ok(Some(trust))
}

pub fn inspect_command(a: InspectArgs) -> Result<ExitCode> {
    let trust = inspect_trust(&a)?;
    let text = a.file.to_string_lossy();
    let out = match a.s3.object(&text, a.s3_profile.clone())? {
        None => divvi::inspect::inspect(&a.file, trust.as_ref(), a.limit)?,
        Some((store, key)) => {
            let source = divvi::inspect::Source::Object {
                store: store.as_ref(),
                key,
            };
            divvi::inspect::inspect_source(&source, trust.as_ref(), a.limit)?
        }
    };
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
