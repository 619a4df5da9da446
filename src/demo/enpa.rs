//! The ENPA demo: the ingestor makes Prio2 packets from random measurements (some
//! deliberately invalid), and the servers and portal compute the histogram.

use super::servers::intake_and_aggregate;
use super::{spoiled_at, timed, DemoOptions, DemoReport, Progress};
use crate::batch::{truncate_to_minute, Window};
use crate::config::{Ingestor, Portal, Server};
use crate::keygen::{keygen, Deployment};
use crate::stages::{collect, ingest, CHUNK};
use crate::wire::DataSharePacket;
use anyhow::{bail, Result};
use chrono::Utc;
use rand::RngExt;
use rayon::prelude::*;

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

/// A random report: one bin set, drawn from a skewed distribution so the histogram has shape.
fn random_report(bins: usize, rng: &mut impl rand::Rng) -> Vec<u32> {
    let mut m = vec![0u32; bins];
    // Squaring a uniform number favours low bins.
    let u: f64 = rng.random();
    let bin = ((u * u) * bins as f64) as usize;
    m[bin.min(bins - 1)] = 1;
    m
}

/// The ENPA demo: Prio2 packets made by the ingestor from random measurements.
pub(super) fn run(
    options: &DemoOptions,
    bins: usize,
    progress: &dyn Progress,
) -> Result<DemoReport> {
    if bins == 0 {
        bail!("bins must be positive");
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
    let spoil = |i: usize| spoiled_at(options, i).map(|k| SPOILS[k % SPOILS.len()]);

    let mut truth = vec![0u64; bins];
    let ingest_options = ingest::IngestOptions {
        aggregation: aggregation.to_string(),
        bins,
        epsilon: 1.0,
        batch_size: options.batch_size,
        time,
    };
    timed(progress, "ingest", total, &mut stages, |tick| {
        let maker = ingest::PacketMaker::new(&ingestor, bins)?;
        let mut batcher = ingest::Batcher::new(&ingestor, &ingest_options);
        for start in (0..options.reports).step_by(CHUNK) {
            let end = (start + CHUNK).min(options.reports);
            let reports: Vec<(Vec<u32>, Option<Spoil>)> = (start..end)
                .map(|i| (random_report(bins, &mut rng), spoil(i)))
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

    let invalid =
        intake_and_aggregate(&servers, aggregation, window, total, progress, &mut stages)?;
    let result = timed(progress, "collect", 0, &mut stages, |_| {
        collect::collect(&portal, aggregation, &window)
    })?;
    // divvi's parts record the valid clients; the ENPA field also counts failed proofs.
    let clients = match result.valid_clients {
        Some(valid) => valid,
        None => u64::try_from(result.total_individual_clients)?,
    };
    Ok(DemoReport {
        dir: d.dir,
        vdaf: options.vdaf.clone(),
        truth: truth.into_iter().map(u128::from).collect(),
        result: result.histogram.into_iter().map(u128::from).collect(),
        labels: None,
        reports: total,
        clients,
        invalid_injected: options.invalid,
        invalid_found: result.invalid_packets,
        invalid,
        stages,
    })
}
