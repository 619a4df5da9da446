//! What work is pending, and who does it: one home for scheduling.
//!
//! Intake's pending work (`pending`): ingestion batches of the lookback that this server
//! has not validated, incomplete ones, and how they are split between workers (`--shard
//! i/N`, Kubernetes Indexed Jobs).
//!
//! Aggregation runs (the rest): which batches a window's sum parts cover, agreed by both
//! servers. The rule: server 0 decides. When it aggregates a run it lists the batches of
//! the window that both validations cover at that moment, signs that list (the
//! manifest), keeps it and sends it to server 1's inbox; both servers sum exactly the
//! listed batches, and each sum part lists them, which `collect` compares. A batch of the
//! window that was not ready is late: it is reported, and an explicit later run
//! (`--late`, run k >= 1 of the same window) sums it. Every run ends with a record in the
//! server's own storage; its presence means "done".

mod collectable;
mod exclusion;
mod execute;
mod history;
mod manifest;
mod pending;
mod plan;
mod status;
mod windows;

/// Intake's and the passes' split of batches between workers.
pub use crate::batch::Shard;
pub use collectable::collectable_runs;
pub use exclusion::{exclude, exclusions, Exclusion};
pub use execute::{execute_run, RunOutcome};
pub(crate) use history::summed_by;
pub use manifest::{read_manifest, Manifest, SignedManifest};
pub use pending::{
    parse_duration, pending_intake, scan_ingestion, scan_ingestion_between, Incomplete, Scan,
};
pub use plan::{
    decide_late_run, decide_run, leader_pending, missing_validations, read_decided, scan_window,
    undone_runs, Decided, Decision, WindowScan,
};
pub use status::{status, RunState, StatusOptions, WindowStatus};
pub use windows::{closed_windows, window_of};

pub use crate::ids::RunId;

use crate::batch::Window;
use crate::ids::validate_name;
use crate::store::{get_bytes, put_bytes, ObjectStore};
use anyhow::{anyhow, Context, Result};

/// Where a server keeps its runs (own storage; server 1's inbox for server 0's manifests).
pub(crate) const RUNS_FOLDER: &str = "runs";
const MANIFEST_SUFFIX: &str = ".manifest.sig";
const DONE_SUFFIX: &str = ".done.json";
const FAILED_SUFFIX: &str = ".failed.json";
/// Manifests and records are small; this bounds what a read accepts.
const MAX_RUN_OBJECT_BYTES: u64 = 256 << 20;

impl RunId {
    fn key(&self, suffix: &str) -> String {
        format!("{}/{RUNS_FOLDER}/{}{suffix}", self.aggregation, self.name())
    }

    pub fn manifest_key(&self) -> String {
        self.key(MANIFEST_SUFFIX)
    }

    /// Where revision `k` of the run's manifest is: revision 0 at `manifest_key`, later
    /// ones beside it (`….manifest.r{k}.sig`), each written once.
    pub fn manifest_key_of(&self, revision: u32) -> String {
        match revision {
            0 => self.manifest_key(),
            k => self.key(&format!(".manifest.r{k}.sig")),
        }
    }

    pub fn done_key(&self) -> String {
        self.key(DONE_SUFFIX)
    }

    pub fn failed_key(&self) -> String {
        self.key(FAILED_SUFFIX)
    }

    /// The run a manifest key names (`{agg}/runs/{start}-{end}[-late{k}].manifest.sig`).
    pub fn from_manifest_key(key: &str) -> Option<RunId> {
        let rest = key.strip_suffix(MANIFEST_SUFFIX)?;
        let (aggregation, name) = rest.split_once(&format!("/{RUNS_FOLDER}/"))?;
        let (window_name, run) = match name.split_once("-late") {
            Some((w, k)) => (w, k.parse().ok().filter(|&k| k > 0)?),
            None => (name, 0),
        };
        let (start, end) = window_name.split_once('-')?;
        let parse = |t| crate::batch::parse_time(t).ok();
        let window = Window::new(parse(start)?, parse(end)?).ok()?;
        let id = RunId::new(aggregation, window, run).ok()?;
        // Only canonical keys: the round trip gives the same key.
        (id.manifest_key() == key).then_some(id)
    }

    /// The run of an aggregation named `{start}-{end}` or `{start}-{end}-late{k}`.
    pub fn from_name(aggregation: &str, name: &str) -> Option<RunId> {
        RunId::from_manifest_key(&format!(
            "{aggregation}/{RUNS_FOLDER}/{name}{MANIFEST_SUFFIX}"
        ))
    }

    pub fn sort_key(&self) -> (i64, i64, u32) {
        (
            self.window.start.timestamp(),
            self.window.end.timestamp(),
            self.run,
        )
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} run {}", self.aggregation, self.name())
    }
}

/// Runs whose manifests are in a location, oldest window first.
pub fn list_manifests(store: &dyn ObjectStore, aggregation: &str) -> Result<Vec<RunId>> {
    validate_name("aggregation", aggregation).map_err(|e| anyhow!(e))?;
    let mut runs: Vec<RunId> = store
        .list(&format!("{aggregation}/{RUNS_FOLDER}/"))?
        .iter()
        .filter_map(|k| RunId::from_manifest_key(k))
        .collect();
    runs.sort_by_key(RunId::sort_key);
    Ok(runs)
}

/// What a server keeps once it has written a run's sum part: the run is done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub aggregation: String,
    pub run: String,
    pub batches: Vec<String>,
    pub packets: u64,
    pub valid: u64,
    pub invalid: u64,
    pub sum_part: String,
    /// The revision of the manifest this run summed (see `Manifest::revision`).
    #[serde(default)]
    pub revision: u32,
}

/// What a server keeps when a run failed (until a later attempt succeeds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedRecord {
    pub aggregation: String,
    pub run: String,
    pub error: String,
    pub at: String,
    /// The run had fewer valid clients than the floor: it wrote nothing, revealed
    /// nothing, and may be decided again once more batches are ready.
    #[serde(default)]
    pub too_few_clients: bool,
}

pub fn read_done(store: &dyn ObjectStore, run: &RunId) -> Result<Option<RunRecord>> {
    read_json(store, &run.done_key())
}

pub fn read_failed(store: &dyn ObjectStore, run: &RunId) -> Result<Option<FailedRecord>> {
    read_json(store, &run.failed_key())
}

pub fn write_done(store: &dyn ObjectStore, run: &RunId, record: &RunRecord) -> Result<()> {
    put_bytes(store, &run.done_key(), &serde_json::to_vec_pretty(record)?)?;
    Ok(())
}

pub fn write_failed(store: &dyn ObjectStore, run: &RunId, error: &anyhow::Error) -> Result<()> {
    let too_few_clients = error
        .downcast_ref::<crate::stages::aggregate::TooFewClients>()
        .is_some();
    let record = FailedRecord {
        aggregation: run.aggregation.clone(),
        run: run.name(),
        error: format!("{error:#}"),
        at: chrono::Utc::now().to_rfc3339(),
        too_few_clients,
    };
    put_bytes(
        store,
        &run.failed_key(),
        &serde_json::to_vec_pretty(&record)?,
    )?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<T>> {
    if store.head(key)?.is_none() {
        return Ok(None);
    }
    let bytes = get_bytes(store, key, MAX_RUN_OBJECT_BYTES)?;
    let value = serde_json::from_slice(&bytes).with_context(|| store.describe(key))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_time;

    #[test]
    fn run_keys_round_trip() {
        let w = Window::new(
            parse_time("202611230000").unwrap(),
            parse_time("202611232359").unwrap(),
        )
        .unwrap();
        for run in [0, 1, 12] {
            let id = RunId::new("en-a", w, run).unwrap();
            assert_eq!(RunId::from_manifest_key(&id.manifest_key()), Some(id));
        }
        assert_eq!(
            RunId::new("en-a", w, 1).unwrap().manifest_key(),
            "en-a/runs/202611230000-202611232359-late1.manifest.sig"
        );
        for bad in [
            "en-a/runs/202611230000-202611232359-late0.manifest.sig",
            "en-a/runs/202611230000-202611232359-latex.manifest.sig",
            "en-a/runs/202611232359-202611230000.manifest.sig",
            "en-a/runs/x.manifest.sig",
            "en-a/runs/202611230000-202611232359.done.json",
        ] {
            assert_eq!(RunId::from_manifest_key(bad), None, "{bad}");
        }
    }
}
