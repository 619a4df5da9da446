//! An operator's decision to leave one batch out of every run of its aggregation: a batch
//! that cannot be summed (re-signed after intake, broken in storage) must not hold its
//! window back for good. The server that decides runs signs it, keeps it, and sends it
//! to its peer with the manifests; both servers follow it. A batch a run has already
//! summed here cannot be excluded: its run's result may be published, and summing the
//! run again without it would reveal the batch's sum by difference.

use super::{list_manifests, read_done, RUNS_FOLDER};
use crate::batch::BatchId;
use crate::batch::{sign_json, verify_json};
use crate::config::Server;
use crate::ids::ServerIndex;
use crate::store::{get_bytes, put_bytes, ObjectStore};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// Exclusions are small; this bounds what a read accepts.
const MAX_EXCLUSION_BYTES: u64 = 1 << 20;
const SUFFIX: &str = ".exclusion.sig";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exclusion {
    /// The batch, `agg/Y/m/d/H/M/uuid`.
    pub batch: String,
    pub reason: String,
    pub at: String,
}

fn key(batch: &BatchId) -> String {
    format!(
        "{}/{RUNS_FOLDER}/excluded/{}{SUFFIX}",
        batch.aggregation, batch.uuid
    )
}

/// Signs and writes the exclusion of `batch`, where this server and its peer read
/// decisions. Refused on a server that does not decide runs, and for a batch a run has
/// summed here.
pub fn exclude(server: &Server, batch: &BatchId, reason: &str) -> Result<Exclusion> {
    if !server.decides_runs {
        bail!("only the server that decides runs (server 0) excludes batches; server 1 follows its exclusions");
    }
    let name = batch.to_string();
    for run in list_manifests(server.own.as_ref(), &batch.aggregation)? {
        let Some(manifest) = super::read_decided(server, &run)? else {
            continue;
        };
        if manifest.manifest.batches.contains(&name)
            && read_done(server.own.as_ref(), &run)?.is_some()
        {
            bail!(
                "batch {name} is summed by {run}, which is done here: its result may be published, and summing it again without the batch would reveal the batch's sum"
            );
        }
    }
    let exclusion = Exclusion {
        batch: name,
        reason: reason.to_string(),
        at: chrono::Utc::now().to_rfc3339(),
    };
    let bytes = sign_json(
        &exclusion,
        &server.signing_key,
        &format!("exclusion of {batch}"),
    )?;
    put_bytes(server.own.as_ref(), &key(batch), &bytes)?;
    if server.index == ServerIndex::Zero {
        put_bytes(server.peer_outbox.as_ref(), &key(batch), &bytes)?;
    }
    Ok(exclusion)
}

/// The exclusions of an aggregation where this server reads decisions, by batch name;
/// each signature is checked.
pub fn exclusions(server: &Server, aggregation: &str) -> Result<BTreeMap<String, Exclusion>> {
    let (store, trust) = server.decisions();
    let prefix = format!("{aggregation}/{RUNS_FOLDER}/excluded/");
    let mut found = BTreeMap::new();
    for key in store.list(&prefix)? {
        if !key.ends_with(SUFFIX) {
            continue;
        }
        let exclusion: Exclusion = read(store, &key, trust)?;
        let uuid_in_key = key.trim_start_matches(&prefix).trim_end_matches(SUFFIX);
        if !exclusion.batch.ends_with(&format!("/{uuid_in_key}"))
            || !exclusion.batch.starts_with(&format!("{aggregation}/"))
        {
            bail!(
                "{}: excludes {}, not the batch its name says",
                store.describe(&key),
                exclusion.batch
            );
        }
        found.insert(exclusion.batch.clone(), exclusion);
    }
    Ok(found)
}

fn read(store: &dyn ObjectStore, key: &str, trust: &crate::crypto::TrustSet) -> Result<Exclusion> {
    let bytes = get_bytes(store, key, MAX_EXCLUSION_BYTES)?;
    Ok(verify_json(&bytes, trust, &store.describe(key))?)
}
