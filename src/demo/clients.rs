//! The clients' side of the DAP demo: random measurements made into reports by the
//! client library, some spoiled on purpose, in upload bodies: all the ingestor gets.

use super::{draw, spoiled_at, DemoOptions};
use crate::dap::{encode_reports, DapClient, Measurement, Report};
use crate::stages::CHUNK;
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::collections::HashSet;

/// How a report is spoiled, in turn. The ingestor lets each through (it holds no key and
/// checks only framing and routing); the servers must list it invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    /// A flipped byte in the leader's ciphertext: server 0 cannot open its share.
    LeaderCiphertext,
    /// A flipped byte in the helper's ciphertext: server 1 cannot open its share.
    HelperCiphertext,
    /// Made by a client whose clock is an hour (the task's time precision) slow: its
    /// time lies before the window.
    Stale,
    /// Not a report of its own: a valid report sent again in a later upload, whose id
    /// is then seen twice.
    Duplicate,
}

const SPOILS: [Spoil; 4] = [
    Spoil::LeaderCiphertext,
    Spoil::HelperCiphertext,
    Spoil::Stale,
    Spoil::Duplicate,
];

/// One client's report of `m`, made at `now` (unix seconds), spoiled as asked.
fn make_report(
    client: &DapClient,
    m: &Measurement,
    spoil: Option<Spoil>,
    now: u64,
) -> Result<Report> {
    let time = match spoil {
        // One time precision back: the time unit before the window's.
        Some(Spoil::Stale) => now.saturating_sub(client.task().time_precision()),
        _ => now,
    };
    let mut report = client.report(m, time)?;
    let flip = |payload: &mut Vec<u8>| {
        if let Some(byte) = payload.first_mut() {
            *byte ^= 1;
        }
    };
    match spoil {
        Some(Spoil::LeaderCiphertext) => flip(&mut report.leader_encrypted_input_share.payload),
        Some(Spoil::HelperCiphertext) => flip(&mut report.helper_encrypted_input_share.payload),
        _ => {}
    }
    Ok(report)
}

/// What the clients sent, and the truth only the demo knows.
pub(super) struct Uploads {
    /// Upload bodies: one per `batch_size` reports, and last the reports sent again.
    pub bodies: Vec<Vec<u8>>,
    /// The aggregate of the measurements whose reports are not spoiled.
    pub truth: Vec<u128>,
    /// Heavy hitters: how many of those reports carry each string.
    pub strings: std::collections::BTreeMap<Vec<u8>, u64>,
}

/// Which reports are spoiled, and how; and which valid ones are sent again.
pub(super) struct Plan {
    spoils: Vec<Option<Spoil>>,
    /// One valid report for each duplicate, in its own later upload (an upload refuses a
    /// report id it holds twice, so no report is sent again twice).
    resent: HashSet<usize>,
}

impl Plan {
    pub fn new(options: &DemoOptions) -> Result<Plan> {
        if options.invalid >= options.reports {
            bail!("a run needs valid reports: spoil fewer than --reports");
        }
        let spoils: Vec<Option<Spoil>> = (0..options.reports)
            .map(|i| spoiled_at(options, i).map(|k| SPOILS[k % SPOILS.len()]))
            .collect();
        let duplicates = spoils
            .iter()
            .filter(|s| **s == Some(Spoil::Duplicate))
            .count();
        let valid = spoils.iter().enumerate().filter(|(_, s)| s.is_none());
        let resent: HashSet<usize> = valid.map(|(i, _)| i).take(duplicates).collect();
        if resent.len() < duplicates {
            bail!(
                "{duplicates} duplicates need as many valid reports to send again; there are {}: spoil fewer",
                resent.len()
            );
        }
        Ok(Plan { spoils, resent })
    }

    /// The reports the clients make: all but the duplicates, which are sent again.
    pub fn made(&self) -> u64 {
        (self.spoils.len() - self.resent.len()) as u64
    }
}

/// The clients' side: draws each measurement, makes its report with the client library
/// (in parallel), spoils some, and encodes the uploads.
pub(super) fn make_uploads(
    options: &DemoOptions,
    client: &DapClient,
    plan: &Plan,
    now: u64,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Uploads> {
    let vdaf = client.task().vdaf();
    let spoils = &plan.spoils;
    let mut rng = rand::rng();
    let mut truth = draw::zero(vdaf);
    let mut strings = std::collections::BTreeMap::new();
    let mut bodies = Vec::new();
    let mut again = Vec::with_capacity(plan.resent.len());
    for start in (0..spoils.len()).step_by(options.batch_size) {
        let end = (start + options.batch_size).min(spoils.len());
        let mut upload = Vec::with_capacity(end - start);
        for chunk in (start..end).step_by(CHUNK) {
            let drawn: Vec<(usize, Measurement, Option<Spoil>)> = (chunk..(chunk + CHUNK).min(end))
                .filter(|&i| spoils[i] != Some(Spoil::Duplicate))
                .map(|i| (i, draw::measurement(vdaf, &mut rng), spoils[i]))
                .collect();
            for (_, m, _) in drawn.iter().filter(|(_, _, spoil)| spoil.is_none()) {
                draw::add(&mut truth, m);
                if let Measurement::String(s) = m {
                    *strings.entry(s.clone()).or_default() += 1;
                }
            }
            let reports: Vec<Report> = drawn
                .par_iter()
                .map(|(_, m, spoil)| make_report(client, m, *spoil, now))
                .collect::<Result<_>>()?;
            for ((i, _, _), report) in drawn.iter().zip(&reports) {
                if plan.resent.contains(i) {
                    again.push(report.clone());
                }
            }
            tick(reports.len() as u64);
            upload.extend(reports);
        }
        if !upload.is_empty() {
            bodies.push(encode_reports(client.task().version(), &upload)?);
        }
    }
    if !again.is_empty() {
        bodies.push(encode_reports(client.task().version(), &again)?);
    }
    Ok(Uploads {
        bodies,
        truth,
        strings,
    })
}
