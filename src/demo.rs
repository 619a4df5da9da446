//! `divvi demo`: the whole pipeline on local folders. Makes a fresh deployment, generates
//! random reports (some deliberately invalid), runs ingest, intake ×2, aggregate ×2 and
//! collect, and compares the result with the true histogram.

use crate::batch::{truncate_to_minute, Window};
use crate::config::{Ingestor, Portal, Server};
use crate::crypto::PacketScheme;
use crate::keygen::{keygen, Deployment};
use crate::schedule::{execute_run, RunId, RunOutcome};
use crate::stages::{collect, ingest, intake, CHUNK};
use crate::wire::DataSharePacket;
use anyhow::{bail, Result};
use chrono::{TimeDelta, Utc};
use rand::RngExt;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub reports: usize,
    pub bins: usize,
    pub batch_size: usize,
    pub invalid: usize,
    pub scheme: PacketScheme,
    /// Local folders (the default) or buckets on an S3 endpoint.
    pub layout: crate::keygen::Layout,
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct StageTiming {
    pub stage: String,
    pub packets: u64,
    pub seconds: f64,
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
    pub truth: Vec<u64>,
    pub histogram: Vec<u64>,
    pub clients: i64,
    pub invalid_injected: usize,
    pub invalid_found: usize,
    /// The invalid packets server 0 listed, with the reason each was refused.
    pub invalid: Vec<crate::stages::Rejected>,
    pub stages: Vec<StageTiming>,
}

impl DemoReport {
    pub fn matches(&self) -> bool {
        self.truth == self.histogram
            && self.invalid_injected == self.invalid_found
            && self.clients == self.truth_clients()
    }
    fn truth_clients(&self) -> i64 {
        self.stages.first().map(|s| s.packets as i64).unwrap_or(0) - self.invalid_injected as i64
    }
}

/// How an invalid report is spoiled, in turn.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// A 2 in the measurement: the proof fails.
    NotBinary,
    /// A flipped ciphertext byte in server 1's packet: it cannot be opened.
    FlippedByte,
    /// `r_pit` outside 32 bits: both servers refuse it.
    RPitOutOfRange,
}

const SPOILS: [Spoil; 3] = [Spoil::NotBinary, Spoil::FlippedByte, Spoil::RPitOutOfRange];

/// Makes a report's packets, spoiled as asked.
fn make_spoiled(
    maker: &ingest::PacketMaker,
    measurement: &[u32],
    spoil: Option<Spoil>,
) -> Result<[DataSharePacket; 2]> {
    let mut m = measurement.to_vec();
    if let Some(Spoil::NotBinary) = spoil {
        m[0] = 2;
    }
    let mut pair = maker.make(&m)?;
    match spoil {
        Some(Spoil::FlippedByte) => {
            if let Some(byte) = pair[1].encrypted_payload.last_mut() {
                *byte ^= 1;
            }
        }
        Some(Spoil::RPitOutOfRange) => pair.iter_mut().for_each(|p| p.r_pit = -5),
        Some(Spoil::NotBinary) | None => {}
    }
    Ok(pair)
}

fn timed<T>(
    progress: &dyn Progress,
    stage: &str,
    total: u64,
    stages: &mut Vec<StageTiming>,
    f: impl FnOnce(&(dyn Fn(u64) + Sync)) -> Result<T>,
) -> Result<T> {
    progress.begin(stage, total);
    let start = Instant::now();
    let tick = |n| progress.tick(n);
    let out = f(&tick);
    progress.end();
    stages.push(StageTiming {
        stage: stage.to_string(),
        packets: total,
        seconds: start.elapsed().as_secs_f64(),
    });
    out
}

/// A random report: one bin set, drawn from a skewed distribution so the histogram has shape.
fn random_report(bins: usize, rng: &mut impl rand::Rng) -> Vec<u32> {
    let mut m = vec![0u32; bins];
    // Squaring a uniform number favours low bins.
    let u: f64 = rng.random();
    let bin = ((u * u) * bins as f64) as usize;
    m[bin.min(bins - 1)] = 1;
    m
}

pub fn run_demo(options: &DemoOptions, progress: &dyn Progress) -> Result<DemoReport> {
    if options.reports == 0 || options.batch_size == 0 || options.bins == 0 {
        bail!("reports, batch size and bins must be positive");
    }
    if options.invalid > options.reports {
        bail!("cannot spoil more reports than there are");
    }
    let d: Deployment = keygen(
        &options.dir,
        options.scheme,
        "divvi-demo",
        &options.layout,
        // The demo compares with the truth at any size; a deployment sets its own floor.
        crate::config::Limits {
            min_clients: 1,
            ..Default::default()
        },
    )?;
    let ingestor = Ingestor::load(&d.ingestor)?;
    let servers = [Server::load(&d.servers[0])?, Server::load(&d.servers[1])?];
    let portal = Portal::load(&d.portal)?;
    let aggregation = "demo-histogram";
    let time = truncate_to_minute(Utc::now());
    let window = Window::new(time, time).map_err(anyhow::Error::msg)?;
    let total = options.reports as u64;
    let mut stages = Vec::new();
    let mut rng = rand::rng();

    // Which reports are spoiled: spread evenly through the run.
    let spoiled_at = |i: usize| -> Option<Spoil> {
        if options.invalid == 0 {
            return None;
        }
        let step = options.reports / options.invalid;
        (i % step == step / 2 && i / step < options.invalid)
            .then(|| SPOILS[(i / step) % SPOILS.len()])
    };

    let mut truth = vec![0u64; options.bins];
    let ingest_options = ingest::IngestOptions {
        aggregation: aggregation.to_string(),
        bins: options.bins,
        epsilon: 1.0,
        batch_size: options.batch_size,
        time,
    };
    timed(progress, "ingest", total, &mut stages, |tick| {
        let maker = ingest::PacketMaker::new(&ingestor, options.bins)?;
        let mut batcher = ingest::Batcher::new(&ingestor, &ingest_options);
        for start in (0..options.reports).step_by(CHUNK) {
            let end = (start + CHUNK).min(options.reports);
            let reports: Vec<(Vec<u32>, Option<Spoil>)> = (start..end)
                .map(|i| (random_report(options.bins, &mut rng), spoiled_at(i)))
                .collect();
            for (m, spoil) in &reports {
                if spoil.is_none() {
                    truth
                        .iter_mut()
                        .zip(m)
                        .for_each(|(t, &v)| *t += u64::from(v));
                }
            }
            let pairs: Vec<[DataSharePacket; 2]> = reports
                .par_iter()
                .map(|(m, spoil)| make_spoiled(&maker, m, *spoil))
                .collect::<Result<_>>()?;
            for pair in &pairs {
                batcher.push(pair)?;
            }
            tick(pairs.len() as u64);
        }
        batcher.finish().map(drop)
    })?;

    for server in &servers {
        let name = format!("intake {}", server.index);
        timed(progress, &name, total, &mut stages, |tick| {
            for id in intake::pending_batches(server, aggregation)? {
                intake::intake(server, &id, tick)?;
            }
            Ok(())
        })?;
    }
    let mut invalid = Vec::new();
    for server in &servers {
        let name = format!("aggregate {}", server.index);
        // As the scheduled jobs do: server 0 decides the run's batches, server 1 follows.
        let run = RunId::new(aggregation, window, 0)?;
        let report = timed(
            progress,
            &name,
            total,
            &mut stages,
            |tick| match execute_run(server, &run, TimeDelta::hours(2), Utc::now(), tick)? {
                RunOutcome::Done { report, .. } => Ok(report),
                other => bail!("{run} did not finish: {}", serde_json::to_string(&other)?),
            },
        )?;
        if server.index.is_leader() {
            invalid = report.invalid;
        }
    }
    let result = timed(progress, "collect", 0, &mut stages, |_| {
        collect::collect(&portal, aggregation, &window)
    })?;
    Ok(DemoReport {
        dir: d.dir,
        truth,
        histogram: result.histogram,
        // divvi's parts record the valid clients; the ENPA field also counts failed proofs.
        clients: match result.valid_clients {
            Some(valid) => i64::try_from(valid)?,
            None => result.total_individual_clients,
        },
        invalid_injected: options.invalid,
        invalid_found: result.invalid_packets,
        invalid,
        stages,
    })
}

/// Peak resident memory of this process so far (VmHWM), if the platform tells.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
