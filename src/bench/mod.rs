//! `divvi bench`: the throughput benchmark. Makes the batches of a given number of reports
//! once (ENPA packets or a DAP task's reports, [`batches`]), then times intake and
//! aggregate on both servers, with CPU use and peak memory per stage.
//! Each stage can run several times (`repeat`); the median run is reported, with the
//! slowest and fastest rates beside it, since one short stage is a noisy measurement.

mod batches;
pub mod upload;

use crate::crypto::PacketScheme;
use crate::demo::{DemoVdaf, Progress};
use crate::process::{cpu_seconds, reset_peak_rss};
use crate::stages::intake;
use crate::stages::intake_floor::{self, FloorClock, FloorProbe};
use crate::stages::{aggregate, Tick};
use anyhow::{bail, Result};
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
pub struct StageResult {
    pub stage: String,
    pub packets: u64,
    /// How many times the stage ran; the figures below are the median run's.
    pub runs: usize,
    pub seconds: f64,
    pub packets_per_second: f64,
    /// The slowest and fastest of the runs.
    pub packets_per_second_min: f64,
    pub packets_per_second_max: f64,
    /// CPU time over wall time, in percent (200% = both of two cores busy).
    pub cpu_percent: f64,
    /// Peak resident memory during the stage (the highest of the runs), if the platform
    /// lets it be measured.
    pub peak_rss_mib: Option<f64>,
    /// Intake only: one core's time per packet for the per-packet work alone, on the
    /// batch's own packets, the other cores idle (`intake_floor::per_packet_floor`): the
    /// mean of two measurements, just before and just after the reported run, so that both
    /// see the machine the run saw.
    pub floor_us: Option<f64>,
    /// Intake only: the rate as a share of all cores at that floor, in percent.
    pub of_floor_percent: Option<f64>,
    /// Intake only: the same work timed on every core at once, nothing else running, just
    /// before and just after the run: one core's time per packet when all of them are
    /// busy, as they are in intake. Where cores slow each other down, this is higher than
    /// the alone floor, and the cores' real ceiling for intake.
    pub busy_floor_us: Option<f64>,
    /// Intake only: the rate as a share of all cores at the busy floor, in percent: what
    /// intake reaches of what the cores reach doing nothing but the per-packet work.
    pub of_busy_floor_percent: Option<f64>,
    /// Intake only: the CPU time per packet the run itself spent in that same work
    /// (`intake_floor::FloorClock`), every core busy, in the very seconds of the run.
    pub in_run_floor_us: Option<f64>,
    /// Intake only: the rate as a share of all cores at the in-run floor, in percent: the
    /// part of the cores' time the run spent in the per-packet work. Unlike the share of
    /// the alone floor, it does not move with the machine's speed between the floor's
    /// timing and the run's; it counts as floor what the work lost to sharing the cores
    /// with intake's reading and writing.
    pub of_in_run_floor_percent: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub packets: u64,
    /// `prio2:BINS` (ENPA) or a Prio3 VDAF of a DAP-18 task.
    pub vdaf: DemoVdaf,
    /// ENPA's packet encryption; none for DAP, whose reports are sealed with HPKE.
    pub scheme: Option<PacketScheme>,
    pub cores: usize,
    pub generate_seconds: f64,
    pub stages: Vec<StageResult>,
}

/// Packets of the batch judged for intake's floor, over and over for at least a second
/// on each thread (a steady figure at 16 bins, whose 2,000 packets take 0.1 s).
const FLOOR_PROBE: FloorProbe = FloorProbe {
    sample: 2000,
    min_seconds: 1.0,
    threads: 1,
};

/// How an intake stage's floor is timed: by a probe on the given number of threads
/// (seconds per packet; `None` when there is nothing to time), once on one core with the
/// others idle and once on every core, and by the clock the run feeds.
#[derive(Clone, Copy)]
struct IntakeFloor<'a> {
    probe: &'a dyn Fn(usize) -> Result<Option<f64>>,
    clock: &'a FloorClock,
}

impl IntakeFloor<'_> {
    /// The floor alone and with every core busy, in seconds per packet.
    fn alone_and_busy(&self) -> Result<(Option<f64>, Option<f64>)> {
        Ok(((self.probe)(1)?, (self.probe)(available_cores())?))
    }
}

/// The mean of a floor timed before and after a run.
fn around(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    before.zip(after).map(|(b, a)| (b + a) / 2.0)
}

/// One timed run of a stage; with an intake floor, the alone and all-busy floors are taken
/// just before and just after the run (this shared machine's speed drifts by several
/// percent within minutes: a floor taken once per stage made the same binary's leader 82%
/// one time, 99% the next), and the in-run floor read off the run's clock.
fn measure_once(
    stage: &str,
    packets: u64,
    progress: &dyn Progress,
    f: &mut dyn FnMut(Tick) -> Result<()>,
    floor: Option<IntakeFloor>,
) -> Result<StageResult> {
    let before = floor.map(|f| f.alone_and_busy()).transpose()?;
    if let Some(f) = floor {
        // Anything a warm-up or an earlier run left on the clock is not this run's.
        f.clock.take();
    }
    let resettable = reset_peak_rss();
    progress.begin(stage, packets);
    let (cpu0, wall) = (cpu_seconds(), Instant::now());
    let tick = |n| progress.tick(n);
    f(&tick)?;
    let seconds = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    progress.end();
    let peak_rss_mib = resettable
        .then(crate::process::peak_rss)
        .flatten()
        .map(|b| b as f64 / (1024.0 * 1024.0));
    let in_run = floor.map(|f| f.clock.take().as_secs_f64() / packets as f64);
    let after = floor.map(|f| f.alone_and_busy()).transpose()?;
    let (alone, busy) = match before.zip(after) {
        Some((before, after)) => (around(before.0, after.0), around(before.1, after.1)),
        None => (None, None),
    };
    let rate = packets as f64 / seconds.max(1e-9);
    let of_cores = |floor: f64| 100.0 * rate * floor / available_cores() as f64;
    Ok(StageResult {
        stage: stage.to_string(),
        packets,
        runs: 1,
        seconds,
        packets_per_second: rate,
        packets_per_second_min: rate,
        packets_per_second_max: rate,
        cpu_percent: 100.0 * cpu / seconds.max(1e-9),
        peak_rss_mib,
        floor_us: alone.map(|f| f * 1e6),
        of_floor_percent: alone.map(of_cores),
        busy_floor_us: busy.map(|f| f * 1e6),
        of_busy_floor_percent: busy.map(of_cores),
        in_run_floor_us: in_run.map(|f| f * 1e6),
        of_in_run_floor_percent: in_run.map(of_cores),
    })
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `repeat` runs of a stage, reported as the median run (the lower middle one for an even
/// count, with its own floor), with the range of rates and the highest peak memory.
fn measure(
    stage: &str,
    packets: u64,
    (repeat, floor): (usize, Option<IntakeFloor>),
    progress: &dyn Progress,
    mut f: impl FnMut(Tick) -> Result<()>,
) -> Result<StageResult> {
    let repeat = repeat.max(1);
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        runs.push(measure_once(stage, packets, progress, &mut f, floor)?);
    }
    runs.sort_by(|a, b| a.packets_per_second.total_cmp(&b.packets_per_second));
    let peak = runs.iter().filter_map(|r| r.peak_rss_mib).reduce(f64::max);
    let (min, max) = (
        runs[0].packets_per_second,
        runs[runs.len() - 1].packets_per_second,
    );
    let count = runs.len();
    let mut median = runs.swap_remove((count - 1) / 2);
    median.runs = count;
    median.packets_per_second_min = min;
    median.packets_per_second_max = max;
    median.peak_rss_mib = peak;
    Ok(median)
}

/// Runs the benchmark of `vdaf` in `dir` (a fresh folder; it holds the batches, which may
/// be large). `scheme` is ENPA's packet encryption, unused by a DAP task.
pub fn run_bench(
    dir: &Path,
    packets: u64,
    vdaf: &DemoVdaf,
    scheme: PacketScheme,
    repeat: usize,
    progress: &dyn Progress,
) -> Result<BenchReport> {
    if packets == 0 {
        bail!("packets must be positive");
    }
    let generate = Instant::now();
    let prepared = match vdaf {
        DemoVdaf::Prio2 { bins } => batches::prio2(dir, packets, *bins, scheme, progress)?,
        DemoVdaf::Dap { version, vdaf } => batches::dap(dir, packets, (*version, vdaf), progress)?,
    };
    let generate_seconds = generate.elapsed().as_secs_f64();
    let batches::Prepared { servers, window } = &prepared;
    let aggregation = batches::AGGREGATION;

    let cores = available_cores();
    let mut stages = Vec::new();
    for server in servers {
        let ids = intake::pending_batches(server, aggregation)?;
        // Measured here rather than taken from criterion: a shared machine's speed
        // drifts by several percent between runs, and the ratio must not.
        let probe = |threads| match ids.first() {
            Some(id) => {
                let probe = FloorProbe {
                    threads,
                    ..FLOOR_PROBE
                };
                Ok(intake_floor::per_packet_floor(server, id, probe)?
                    .map(|floor| floor.as_secs_f64()))
            }
            None => Ok(None),
        };
        let clock = FloorClock::default();
        let floor = IntakeFloor {
            probe: &probe,
            clock: &clock,
        };
        stages.push(measure(
            &format!("intake {}", server.index),
            packets,
            (repeat, Some(floor)),
            progress,
            |tick| {
                let failures = std::sync::Mutex::new(Vec::new());
                intake::intake_batches(server, &ids, tick, Some(&clock), |id, r, _| {
                    if let Err(e) = r {
                        let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
                        f.push(anyhow::anyhow!("intake of {id}: {e:#}"));
                    }
                });
                let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
                failures.into_iter().next().map_or(Ok(()), Err)
            },
        )?);
    }
    for server in servers {
        stages.push(measure(
            &format!("aggregate {}", server.index),
            packets,
            (repeat, None),
            progress,
            |tick| {
                let report = aggregate::aggregate(server, aggregation, window, tick)?;
                if report.valid != packets {
                    bail!(
                        "aggregate counted {} valid packets of {packets}",
                        report.valid
                    );
                }
                Ok(())
            },
        )?);
    }
    Ok(BenchReport {
        packets,
        vdaf: vdaf.clone(),
        scheme: matches!(vdaf, DemoVdaf::Prio2 { .. }).then_some(scheme),
        cores,
        generate_seconds,
        stages,
    })
}

impl BenchReport {
    /// A markdown table, one row per stage.
    pub fn markdown(&self) -> String {
        let mut t = String::from(
            "| vdaf | scheme | stage | reports/s | of floor | of busy floor | of in-run floor | CPU | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in &self.stages {
            let rss = s.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
            let percent = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.0}%"));
            t.push_str(&format!(
                "| {} | {} | {} | {:.0} | {} | {} | {} | {:.0}% | {} |\n",
                self.vdaf,
                self.scheme.map_or("-".into(), |s| s.to_string()),
                s.stage,
                s.packets_per_second,
                percent(s.of_floor_percent),
                percent(s.of_busy_floor_percent),
                percent(s.of_in_run_floor_percent),
                s.cpu_percent,
                rss
            ));
        }
        t
    }
}
