//! Deciding runs (server 0) and finding the runs a server still has to sum.

use super::exclusion::exclusions;
use super::history::{preceding_runs, summed_by};
use super::{
    list_manifests, read_done, read_failed, read_manifest, Manifest, RunId, SignedManifest,
};
use crate::batch::{BatchId, BatchKind, Window};
use crate::config::Server;
use crate::ids::ServerIndex;
use crate::schedule::{scan_ingestion_between, Incomplete};
use crate::stages::{batch_task, BatchTask};
use crate::store::{get_bytes, put_bytes};
use anyhow::{bail, Result};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeSet;

/// A window's batches as one server sees them now.
#[derive(Debug, Clone, Default)]
pub struct WindowScan {
    /// Complete batches both validations cover (own, and the peer's in the inbox).
    pub ready: Vec<BatchId>,
    /// Complete batches still missing a validation, with the missing objects.
    pub waiting: Vec<(BatchId, Vec<String>)>,
    /// Batches whose ingestion objects are not all written yet.
    pub incomplete: Vec<Incomplete>,
}

impl WindowScan {
    /// Every batch of the window, whatever its state (`agg/Y/m/d/H/M/uuid`).
    pub fn all_batches(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.ready.iter().map(ToString::to_string).collect();
        all.extend(self.waiting.iter().map(|(id, _)| id.to_string()));
        all.extend(self.incomplete.iter().map(|i| i.batch.clone()));
        all
    }
}

/// The validation objects of a batch this server cannot see yet (own, then peer's).
pub fn missing_validations(server: &Server, id: &BatchId) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    let own = id.names(BatchKind::Validation(server.index)).signature;
    if server.own.head(&own)?.is_none() {
        missing.push(server.own.describe(&own));
    }
    let peer = id
        .names(BatchKind::Validation(server.index.peer()))
        .signature;
    if server.peer_inbox.head(&peer)?.is_none() {
        missing.push(server.peer_inbox.describe(&peer));
    }
    Ok(missing)
}

pub fn scan_window(
    server: &Server,
    aggregation: &str,
    window: &Window,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<WindowScan> {
    let listed = scan_ingestion_between(
        server,
        aggregation,
        window.start,
        window.end,
        incomplete_after,
        now,
    )?;
    let mut scan = WindowScan {
        incomplete: listed.incomplete,
        ..Default::default()
    };
    for id in listed.complete {
        let missing = missing_validations(server, &id)?;
        if missing.is_empty() {
            scan.ready.push(id);
        } else {
            scan.waiting.push((id, missing));
        }
    }
    Ok(scan)
}

/// A run's batches as server 0 decided them.
#[derive(Debug, Clone)]
pub struct Decided {
    pub run: RunId,
    pub batches: Vec<BatchId>,
    pub manifest: SignedManifest,
    /// Batches of the window neither this run nor an earlier one covers: late.
    pub left_out: Vec<String>,
}

/// Server 0: the run's manifest — the one kept if it was decided before (a rerun, or a
/// racing worker that won), else decided now: the batches both validations cover that no
/// run decided before it summed, and those runs' names. The manifest is created in own
/// storage only if absent, so racing workers agree on one, then sent to server 1's inbox.
pub fn decide_run(
    server: &Server,
    run: &RunId,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Decision> {
    if !server.decides_runs {
        bail!("only server 0 decides which batches a run sums (server 1 decides only with peer_writes_manifests = false)");
    }
    let scan = scan_window(server, &run.aggregation, &run.window, incomplete_after, now)?;
    let key = run.manifest_key();
    let manifest = match read_manifest(server.own.as_ref(), run, &server.own_trust)? {
        Some(kept) if refused_for_too_few_clients(server, run)? => {
            decide_again(server, run, &scan, &kept)?.unwrap_or(kept)
        }
        Some(kept) => kept,
        None => {
            let preceding: Vec<RunId> = list_manifests(server.own.as_ref(), &run.aggregation)?
                .into_iter()
                .filter(|r| r != run)
                .collect();
            let summed = summed_by(server, &preceding)?;
            let excluded = exclusions(server, &run.aggregation)?;
            let ready: Vec<BatchId> = scan
                .ready
                .iter()
                .filter(|id| !summed.contains_key(&id.to_string()))
                .filter(|id| !excluded.contains_key(&id.to_string()))
                .cloned()
                .collect();
            let ready = with_the_runs_parameters(server, run, ready, None)?;
            if ready.is_empty() {
                return Ok(Decision::NothingReady(scan));
            }
            let manifest = Manifest::new(run, &ready, &preceding);
            let signed = SignedManifest::sign(manifest, &server.signing_key)?;
            if server.own.create_new(&key, &signed.bytes)? {
                signed
            } else {
                tracing::info!(run = %run, "another worker decided this run first; using its manifest");
                match read_manifest(server.own.as_ref(), run, &server.own_trust)? {
                    Some(kept) => kept,
                    None => bail!(
                        "{}: vanished after a conditional write refused to replace it",
                        server.own.describe(&key)
                    ),
                }
            }
        }
    };
    // A server 1 deciding for itself (beside the original aggregator) keeps its manifests
    // to itself.
    if server.index == ServerIndex::Zero {
        send_decisions(server, run, manifest.manifest.revision)?;
    }
    let batches = manifest.manifest.batch_ids(run)?;
    let summed = summed_by(server, &preceding_runs(run, &manifest)?)?;
    let covered: BTreeSet<String> = manifest.manifest.batches.iter().cloned().collect();
    let excluded = exclusions(server, &run.aggregation)?;
    let left_out = scan
        .all_batches()
        .into_iter()
        .filter(|b| !covered.contains(b) && !summed.contains_key(b) && !excluded.contains_key(b))
        .collect();
    Ok(Decision::Decided(Decided {
        run: run.clone(),
        batches,
        manifest,
        left_out,
    }))
}

/// The ready batches that share the Prio parameters of the first (by time, then UUID): a
/// run sums one kind of measurement. The others, and batches whose header cannot be
/// read, are left out and reported: not summed by this run, they are its late batches,
/// which a late run (`aggregate --late`) takes with their own parameters.
fn with_the_runs_parameters(
    server: &Server,
    run: &RunId,
    mut ready: Vec<BatchId>,
    mut parameters: Option<BatchTask>,
) -> Result<Vec<BatchId>> {
    ready.sort();
    let mut kept = Vec::new();
    for id in ready {
        let mine = match batch_task(server, &id)? {
            Ok(mine) => mine,
            Err(e) => {
                tracing::warn!(run = %run, batch = %id, error = %e, "batch left out of the run: its ingestion header does not open");
                continue;
            }
        };
        match parameters {
            Some(ref run_parameters) if *run_parameters != mine => {
                tracing::warn!(run = %run, batch = %id, "batch left out of the run: {mine} differ from the run's {run_parameters}; sum it in a late run (aggregate --late)");
            }
            Some(_) => kept.push(id),
            None => {
                parameters = Some(mine);
                kept.push(id);
            }
        }
    }
    Ok(kept)
}

/// A run refused for too few clients wrote nothing and revealed nothing: decided again,
/// it takes the batches ready since (of its parameters) as its next revision. None when
/// nothing new is ready.
fn decide_again(
    server: &Server,
    run: &RunId,
    scan: &WindowScan,
    kept: &SignedManifest,
) -> Result<Option<SignedManifest>> {
    let summed = summed_by(server, &preceding_runs(run, kept)?)?;
    let excluded = exclusions(server, &run.aggregation)?;
    let listed: BTreeSet<&String> = kept.manifest.batches.iter().collect();
    let fresh: Vec<BatchId> = (scan.ready.iter())
        .filter(|id| {
            let name = id.to_string();
            !listed.contains(&name) && !summed.contains_key(&name) && !excluded.contains_key(&name)
        })
        .cloned()
        .collect();
    let first = kept.manifest.batch_ids(run)?.into_iter().next();
    let parameters = match first {
        Some(id) => batch_task(server, &id)?.ok(),
        None => None,
    };
    let fresh = with_the_runs_parameters(server, run, fresh, parameters)?;
    if fresh.is_empty() {
        return Ok(None);
    }
    let next = kept.manifest.extended(&fresh);
    let key = run.manifest_key_of(next.revision);
    let signed = SignedManifest::sign(next, &server.signing_key)?;
    if server.own.create_new(&key, &signed.bytes)? {
        tracing::info!(run = %run, added = fresh.len(), revision = signed.manifest.revision, "run refused for too few clients decided again with the batches ready since");
        return Ok(Some(signed));
    }
    // Another worker decided it again first: its revision stands.
    read_manifest(server.own.as_ref(), run, &server.own_trust)
}

/// Whether this server's last attempt at the run was refused for too few clients (and
/// no attempt since succeeded).
fn refused_for_too_few_clients(server: &Server, run: &RunId) -> Result<bool> {
    if read_done(server.own.as_ref(), run)?.is_some() {
        return Ok(false);
    }
    Ok(read_failed(server.own.as_ref(), run)?.is_some_and(|f| f.too_few_clients))
}

/// Copies every revision of the run's manifest this server keeps to the peer's inbox:
/// the exact bytes, so each copy server 1 reads is the same object, and no revision is
/// missing there if an earlier send was cut short.
fn send_decisions(server: &Server, run: &RunId, latest: u32) -> Result<()> {
    for revision in 0..=latest {
        let key = run.manifest_key_of(revision);
        let bytes = get_bytes(server.own.as_ref(), &key, super::MAX_RUN_OBJECT_BYTES)?;
        put_bytes(server.peer_outbox.as_ref(), &key, &bytes)?;
    }
    Ok(())
}

/// What deciding a run came to.
#[derive(Debug, Clone)]
pub enum Decision {
    Decided(Decided),
    /// No batch of the window is ready to sum (what there is, is in the scan).
    NothingReady(WindowScan),
}

/// A decided run's manifest where this server reads it: its own copy if it decides its
/// runs, else what server 0 sent to its inbox.
pub fn read_decided(server: &Server, run: &RunId) -> Result<Option<SignedManifest>> {
    let (store, trust) = server.decisions();
    read_manifest(store, run, trust)
}

/// Server 0: the next late run of a window whose regular run is decided.
pub fn decide_late_run(
    server: &Server,
    aggregation: &str,
    window: &Window,
    incomplete_after: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Decision> {
    let runs: Vec<RunId> = list_manifests(server.own.as_ref(), aggregation)?
        .into_iter()
        .filter(|r| r.window == *window)
        .collect();
    if !runs.iter().any(|r| r.run == 0) {
        bail!(
            "{aggregation} window {} has no regular run yet: aggregate it before its late batches",
            window.name()
        );
    }
    let next = RunId::new(
        aggregation,
        *window,
        runs.iter().map(|r| r.run).max().unwrap_or(0) + 1,
    )?;
    decide_run(server, &next, incomplete_after, now)
}

/// Decided runs this server has not summed yet, whose window ends at or after `since`.
pub fn undone_runs(server: &Server, aggregation: &str, since: DateTime<Utc>) -> Result<Vec<RunId>> {
    let (decided_in, _) = server.decisions();
    let mut undone = Vec::new();
    for run in list_manifests(decided_in, aggregation)? {
        if run.window.end >= since && !summed_latest(server, &run)? {
            undone.push(run);
        }
    }
    Ok(undone)
}

/// Whether this server has summed the run as last decided: a run decided again (a newer
/// manifest revision) is summed again.
fn summed_latest(server: &Server, run: &RunId) -> Result<bool> {
    let Some(done) = read_done(server.own.as_ref(), run)? else {
        return Ok(false);
    };
    let latest = read_decided(server, run)?.map_or(0, |m| m.manifest.revision);
    Ok(done.revision >= latest)
}

/// The scheduled work of a server that decides its runs (server 0, or a server 1 beside
/// the original aggregator): regular runs of closed windows not done yet, and any
/// decided run left unfinished (a crash between deciding and summing). Oldest first.
pub fn leader_pending(
    server: &Server,
    aggregation: &str,
    windows: &[Window],
    since: DateTime<Utc>,
) -> Result<Vec<RunId>> {
    let mut runs = undone_runs(server, aggregation, since)?;
    for w in windows {
        let run = RunId::new(aggregation, *w, 0)?;
        if !runs.contains(&run) && read_done(server.own.as_ref(), &run)?.is_none() {
            runs.push(run);
        }
    }
    runs.sort_by_key(RunId::sort_key);
    Ok(runs)
}
