//! What earlier runs of an aggregation already summed, so nothing is summed twice: the
//! batches their manifests list, and the packet UUIDs each server counted (kept in its
//! own storage, `{aggregation}/counted/{run}.uuids`, 16 bytes per packet, sorted).
//!
//! "Earlier" is what server 0's manifest says: the runs it had decided before this one
//! (`preceding`). Both servers use that same list, and a server sums a run only once it
//! has summed every preceding run, so both refuse exactly the same replayed packets.

use super::plan::read_decided;
use super::{RunId, SignedManifest, MAX_RUN_OBJECT_BYTES};
use crate::config::Server;
use crate::store::{get_bytes, put_bytes};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashSet};
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

/// Batches the preceding runs summed, each with the run that summed it.
pub fn summed_before(server: &Server, preceding: &[RunId]) -> Result<BTreeMap<String, String>> {
    let mut batches = BTreeMap::new();
    for earlier in preceding {
        let Some(m) = read_decided(server, earlier)? else {
            bail!("{earlier} is named as an earlier run but has no manifest");
        };
        for b in m.manifest.batches {
            batches.insert(b, earlier.name());
        }
    }
    Ok(batches)
}

/// Packet UUIDs this server counted in the preceding runs (all must be summed here).
pub fn counted_before(server: &Server, preceding: &[RunId]) -> Result<HashSet<Uuid>> {
    let mut counted = HashSet::new();
    for earlier in preceding {
        let key = counted_key(earlier);
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
