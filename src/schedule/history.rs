//! What earlier runs of an aggregation already summed, so nothing is summed twice: the
//! batches their manifests list, and the packet UUIDs each server counted (kept in its
//! own storage, `{aggregation}/counted/{run}.uuids`, 16 bytes per packet, sorted).
//!
//! A server sums a run only once it has summed every run server 0 decided before it (the
//! manifest's `preceding`), so both servers refuse the same replayed packets. What is
//! refused does not rest on server 0's word, though: a run may not list a batch that any
//! other manifest lists, and packets counted in any other run this server has summed
//! are refused. A dishonest server 0 can then make the servers disagree (and `collect`
//! fail), but not make a packet or batch count twice.

use super::plan::read_decided;
use super::{list_manifests, RunId, SignedManifest, MAX_RUN_OBJECT_BYTES};
use crate::config::Server;
use crate::ids::ReportIdSet;
use crate::store::{get_bytes, put_bytes};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use uuid::Uuid;

fn counted_key(run: &RunId) -> String {
    format!("{}/counted/{}.uuids", run.aggregation, run.name())
}

/// The runs a manifest names as preceding it.
pub fn preceding_runs(run: &RunId, manifest: &SignedManifest) -> Result<Vec<RunId>> {
    manifest
        .manifest
        .preceding
        .iter()
        .map(|name| {
            RunId::from_name(&run.aggregation, name)
                .ok_or_else(|| anyhow!("manifest of {run} names {name:?}, not a run"))
        })
        .collect()
}

/// Batches the given runs list, each with the run that lists it.
pub fn summed_by(server: &Server, runs: &[RunId]) -> Result<BTreeMap<String, String>> {
    let mut batches = BTreeMap::new();
    for earlier in runs {
        let Some(m) = read_decided(server, earlier)? else {
            bail!("{earlier} has no manifest");
        };
        for b in m.manifest.batches {
            batches.insert(b, earlier.name());
        }
    }
    Ok(batches)
}

/// Packet UUIDs this server counted in every other run of the aggregation.
pub fn counted_elsewhere(server: &Server, run: &RunId) -> Result<ReportIdSet> {
    let mut counted = ReportIdSet::default();
    let own_key = counted_key(run);
    let prefix = format!("{}/counted/", run.aggregation);
    for key in server.own.list(&prefix)? {
        if key == own_key || !key.ends_with(".uuids") {
            continue;
        }
        let bytes = get_bytes(server.own.as_ref(), &key, MAX_RUN_OBJECT_BYTES)?;
        if bytes.len() % 16 != 0 {
            bail!(
                "{}: {} bytes, not a whole number of 16-byte UUIDs",
                server.own.describe(&key),
                bytes.len()
            );
        }
        counted.extend(
            bytes
                .chunks_exact(16)
                .filter_map(|c| Uuid::from_slice(c).ok()),
        );
    }
    Ok(counted)
}

pub fn write_counted(server: &Server, run: &RunId, uuids: &[Uuid]) -> Result<()> {
    let mut sorted = uuids.to_vec();
    sorted.sort();
    let bytes: Vec<u8> = sorted.iter().flat_map(|u| *u.as_bytes()).collect();
    put_bytes(server.own.as_ref(), &counted_key(run), &bytes)?;
    Ok(())
}

/// Every other run of the aggregation decided where this server reads decisions.
pub fn other_runs(server: &Server, run: &RunId) -> Result<Vec<RunId>> {
    let (decided_in, _) = server.decisions();
    Ok(list_manifests(decided_in, &run.aggregation)?
        .into_iter()
        .filter(|r| r != run)
        .collect())
}
