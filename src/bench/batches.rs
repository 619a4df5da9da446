//! The batches a benchmark measures, made once before any stage is timed: ENPA packets of
//! random one-hot measurements, or a DAP-18 task's reports sealed by the client library.

use crate::batch::{truncate_to_minute, Window};
use crate::config::{Ingestor, Limits, Server};
use crate::crypto::PacketScheme;
use crate::dap::{encode_reports, DapClient, DapVersion, Task, VdafConfig};
use crate::demo::dap::{deploy_task, window_of};
use crate::demo::{draw, Progress};
use crate::keygen::Layout;
use crate::stages::ingest;
use crate::stages::ingest_dap::{ingest_dap, DapIngestOptions};
use crate::stages::CHUNK;
use anyhow::{Context, Result};
use chrono::Utc;
use rand::RngExt;
use rayon::prelude::*;
use std::path::Path;

/// A deployment with its batches written, ready for intake.
pub(super) struct Prepared {
    pub servers: [Server; 2],
    /// The window aggregate sums.
    pub window: Window,
}

/// The aggregation every bench batch belongs to.
pub(super) const AGGREGATION: &str = "bench";

/// An upload body's size the DAP generator aims at: a batch of histogram-2048 reports
/// (~33 KB each) is then ~2,000 reports, so making 100,000 of them never holds more
/// than one body in memory.
const BODY_BYTES: usize = 64 << 20;

/// One ENPA batch of `packets` random one-hot measurements over `bins` bins.
pub(super) fn prio2(
    dir: &Path,
    packets: u64,
    bins: usize,
    scheme: PacketScheme,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let d = crate::keygen::keygen(
        dir,
        scheme,
        "divvi-bench",
        &Layout::Local,
        Limits::default(),
    )?;
    let ingestor = Ingestor::load(&d.ingestor)?;
    let time = truncate_to_minute(Utc::now());
    let options = ingest::IngestOptions {
        aggregation: AGGREGATION.into(),
        bins,
        epsilon: 1.0,
        batch_size: usize::try_from(packets)?,
        time,
    };
    progress.begin("generate", packets);
    let mut rng = rand::rng();
    let reports = (0..packets).map(|_| {
        let mut m = vec![0u32; bins];
        m[rng.random_range(0..bins)] = 1;
        Ok(m)
    });
    ingest::ingest(&ingestor, &options, reports, None, &|n| progress.tick(n))?;
    progress.end();
    Ok(Prepared {
        servers: [Server::load(&d.servers[0])?, Server::load(&d.servers[1])?],
        window: Window::new(time, time).map_err(anyhow::Error::msg)?,
    })
}

/// A DAP-18 task of `vdaf` and `packets` reports of random measurements, made by the
/// client library in parallel and ingested body by body (each body its own batches).
pub(super) fn dap(
    dir: &Path,
    packets: u64,
    task_vdaf: (DapVersion, &VdafConfig),
    progress: &dyn Progress,
) -> Result<Prepared> {
    let vdaf = task_vdaf.1;
    // DAP's usual minimum batch size, or every report of a smaller run.
    let floor = packets.min(100);
    let d = deploy_task(
        dir,
        PacketScheme::Ecies,
        "divvi-bench",
        &Layout::Local,
        task_vdaf,
        floor,
    )?;
    let task = Task::load(&d.dir.join("task.json"))?;
    let ingestor = Ingestor::load(&d.ingestor)?;
    let client = DapClient::new(&task)?;
    let now = Utc::now();
    let now_secs = u64::try_from(now.timestamp()).context("the clock is before 1970")?;
    let make = |n: usize| -> Result<Vec<u8>> {
        let reports = (0..n)
            .into_par_iter()
            .with_max_len(CHUNK)
            .map_init(rand::rng, |rng, _| {
                client.report(&draw::measurement(vdaf, rng), now_secs)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(encode_reports(client.task().version(), &reports)?)
    };
    let one_report = make(1)?.len();
    let per_body = (BODY_BYTES / one_report.max(1)).max(1);
    progress.begin("generate", packets);
    let mut left = usize::try_from(packets)?;
    while left > 0 {
        let n = left.min(per_body);
        let body = make(n)?;
        let options = DapIngestOptions {
            aggregation: Some(AGGREGATION.into()),
            batch_size: n,
            time: None,
            now: Utc::now(),
        };
        ingest_dap(&ingestor, &task, &body, &options)?;
        progress.tick(n as u64);
        left -= n;
    }
    progress.end();
    Ok(Prepared {
        servers: [Server::load(&d.servers[0])?, Server::load(&d.servers[1])?],
        window: window_of(now)?,
    })
}
