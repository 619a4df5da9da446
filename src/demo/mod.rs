//! `divvi demo`: the whole pipeline on a fresh deployment, beside the truth. Makes keys
//! and configs, draws random measurements (some reports spoiled on purpose), runs ingest,
//! intake ×2, aggregate ×2 and collect, and compares the result with the true one.
//!
//! Two pipelines share this frame: a DAP-18 task with a Prio3 VDAF, whose reports the
//! client library seals ([`dap`]), and ENPA's Prio2 ([`enpa`]).

mod clients;
pub(crate) mod dap;
pub(crate) mod draw;
mod enpa;
mod heavy;
mod servers;
mod vdaf;

pub use vdaf::DemoVdaf;

use crate::crypto::PacketScheme;
use crate::stages::Rejected;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    /// What is measured, and so which pipeline runs.
    pub vdaf: DemoVdaf,
    pub reports: usize,
    pub batch_size: usize,
    pub invalid: usize,
    /// ENPA packet encryption (Prio2 only: DAP reports are sealed with the task's HPKE).
    pub scheme: PacketScheme,
    /// Local folders (the default) or buckets on an S3 endpoint.
    pub layout: crate::keygen::Layout,
    /// Heavy hitters (poplar1): the traversal's threshold and step, if not the demo's.
    pub heavy: HeavyChoice,
}

/// A heavy-hitters demo's traversal settings; None picks the demo's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeavyChoice {
    pub threshold: Option<u64>,
    pub step: Option<usize>,
}

/// Shows progress of each stage; the CLI draws bars, tests pass `NoProgress`.
pub trait Progress: Sync {
    fn begin(&self, stage: &str, total: u64);
    fn tick(&self, n: u64);
    fn end(&self);
}

pub struct NoProgress;
impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn tick(&self, _: u64) {}
    fn end(&self) {}
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageTiming {
    pub stage: String,
    pub packets: u64,
    pub seconds: f64,
    /// CPU time of the whole process during the stage (all threads, user and system):
    /// what the stage cost even on a machine busy with other work.
    #[serde(default)]
    pub cpu_seconds: f64,
}

impl StageTiming {
    pub fn packets_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.packets as f64 / self.seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    pub dir: PathBuf,
    pub vdaf: DemoVdaf,
    /// The true result of the measurements not spoiled: one number for count and sum, one
    /// per bin, bucket or index otherwise.
    pub truth: Vec<u128>,
    /// What collect computed, in the same shape.
    pub result: Vec<u128>,
    /// Heavy hitters: the string of each row of `truth` and `result` (the strings that
    /// reach the threshold, truly or as found; 0 where the other has none).
    pub labels: Option<Vec<String>>,
    /// Reports (packets) the ingestor received, spoiled ones included.
    pub reports: u64,
    /// Reports the servers counted as valid.
    pub clients: u64,
    pub invalid_injected: usize,
    pub invalid_found: usize,
    /// The invalid reports server 0 listed, with the reason each was refused.
    pub invalid: Vec<Rejected>,
    pub stages: Vec<StageTiming>,
}

impl DemoReport {
    /// The result is the truth, and exactly the spoiled reports were left out.
    pub fn matches(&self) -> bool {
        self.truth == self.result
            && self.invalid_injected == self.invalid_found
            && self.clients + self.invalid_injected as u64 == self.reports
    }
}

/// Runs the demo of `options.vdaf`.
pub fn run_demo(options: &DemoOptions, progress: &dyn Progress) -> Result<DemoReport> {
    if options.reports == 0 || options.batch_size == 0 {
        bail!("reports and batch size must be positive");
    }
    if options.invalid > options.reports {
        bail!("cannot spoil more reports than there are");
    }
    match &options.vdaf {
        DemoVdaf::Prio2 { bins } => enpa::run(options, *bins, progress),
        DemoVdaf::Dap { version, vdaf } => dap::run(options, *version, vdaf, progress),
    }
}

/// Finishes a heavy-hitters demo that was stopped (killed, or its machine shut down) in
/// `dir`: the traversal goes on from where it stands, and the heavy hitters found are
/// compared with the truth the first run recorded.
pub fn resume_demo(dir: &std::path::Path, progress: &dyn Progress) -> Result<DemoReport> {
    heavy::resume(dir, progress)
}

/// Which spoiled report, if any, report `i` is (0 for the first spoiled, 1 for the next):
/// the `invalid` spoiled reports are spread evenly through the run.
fn spoiled_at(options: &DemoOptions, i: usize) -> Option<usize> {
    if options.invalid == 0 {
        return None;
    }
    let step = options.reports / options.invalid;
    (i % step == step / 2 && i / step < options.invalid).then_some(i / step)
}

/// Runs one stage, timing it and showing its progress.
fn timed<T>(
    progress: &dyn Progress,
    stage: &str,
    total: u64,
    stages: &mut Vec<StageTiming>,
    f: impl FnOnce(&(dyn Fn(u64) + Sync)) -> Result<T>,
) -> Result<T> {
    progress.begin(stage, total);
    let (start, cpu) = (Instant::now(), crate::process::cpu_seconds());
    let tick = |n| progress.tick(n);
    let out = f(&tick);
    progress.end();
    stages.push(StageTiming {
        stage: stage.to_string(),
        packets: total,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: crate::process::cpu_seconds() - cpu,
    });
    out
}
