//! The portal's pending work: runs both servers have summed (each signed sum part is
//! there) that are not in their aggregation's series yet. Found from one listing of each
//! server's sum-parts location and the series itself; no sum part is read.

use super::RunId;
use crate::config::Portal;
use crate::ids::{validate_name, ServerIndex, SumPartId, Window};
use crate::stages::series::read_series;
use anyhow::{anyhow, Result};
use std::collections::BTreeSet;

/// Runs of `aggregation` (or of every aggregation, if None) that both servers finished
/// and the portal has not collected, by aggregation, then oldest window first.
pub fn collectable_runs(portal: &Portal, aggregation: Option<&str>) -> Result<Vec<RunId>> {
    if let Some(name) = aggregation {
        validate_name("aggregation", name).map_err(|e| anyhow!(e))?;
    }
    let summed = |index: ServerIndex| -> Result<BTreeSet<(String, Window, u32)>> {
        let server = &portal.servers[usize::from(index.number())];
        let prefix = match aggregation {
            Some(name) => format!("{}/{name}/", server.instance),
            None => format!("{}/", server.instance),
        };
        Ok(server
            .sum_parts
            .list(&prefix)?
            .iter()
            .filter_map(|key| SumPartId::from_signature_key(&server.instance, key))
            .filter(|id| id.server == index)
            .map(|id| (id.aggregation, id.window, id.run))
            .collect())
    };
    let both: Vec<_> = summed(ServerIndex::Zero)?
        .intersection(&summed(ServerIndex::One)?)
        .cloned()
        .collect();
    let mut pending = Vec::new();
    let mut collected: Option<(String, BTreeSet<(String, u32)>)> = None;
    for (name, window, run) in both {
        // Rows come sorted by aggregation: its series is read once.
        if collected.as_ref().is_none_or(|(n, _)| *n != name) {
            let keys = read_series(portal.results.as_ref(), &name)?
                .into_iter()
                .map(|row| (row.window, row.run))
                .collect();
            collected = Some((name.clone(), keys));
        }
        let done = collected
            .as_ref()
            .is_some_and(|(_, keys)| keys.contains(&(window.name(), run)));
        if !done {
            pending.push(RunId::new(&name, window, run)?);
        }
    }
    Ok(pending)
}
