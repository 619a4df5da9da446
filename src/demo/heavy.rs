//! The heavy-hitters demo (a Poplar1 task): once the reports are ingested, the traversal
//! runs as its parties would run it, turn by turn: the portal asks a pass, each server
//! runs what it can of it, until the portal has the strings whose count reaches the
//! threshold. They must be exactly the true ones, with their true counts.
//!
//! A traversal of many reports takes hours, so the demo keeps a record in its folder
//! (what was asked, the truth, the timings so far) and `divvi demo --resume DIR` finishes
//! a run that was stopped: every pass picks up where the last one stopped.

use super::clients::Uploads;
use super::{timed, DemoOptions, DemoReport, DemoVdaf, Progress, StageTiming};
use crate::batch::{read_pass_sum_part, PassId, Shard, Window};
use crate::config::{Portal, Server};
use crate::keygen::Deployment;
use crate::stages::collect_heavy::{self, HeavyProgress, HeavySettings};
use crate::stages::{heavy, Rejected};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The share of reports a string must reach to be a heavy hitter in the demo (and at
/// least the servers' `min_clients`, which they hold every revealed count to).
const THRESHOLD_SHARE: f64 = 0.02;
/// Levels each pass goes down: 4 took less time than 2 over 256-bit strings (README).
const STEP: usize = 4;
/// The record's file in the demo's folder.
const RECORD: &str = "heavy-demo.json";

/// What a heavy-hitters demo asked and the truth to judge the answer by, with the
/// timings of its stages so far: written before the first pass and after each one.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct HeavyRecord {
    /// The VDAF as `--vdaf` names it (`poplar1:BITS`).
    vdaf: String,
    aggregation: String,
    /// The window's name (`YYYYmmddHHMM-YYYYmmddHHMM`).
    window: String,
    reports: usize,
    invalid: usize,
    threshold: u64,
    step: usize,
    /// How many valid reports carry each string (the demo's words are ASCII).
    strings: BTreeMap<String, u64>,
    stages: Vec<StageTiming>,
}

impl HeavyRecord {
    /// The record of a demo that has just ingested its reports.
    pub(super) fn new(
        options: &DemoOptions,
        aggregation: &str,
        window: Window,
        uploads: &Uploads,
        stages: Vec<StageTiming>,
    ) -> HeavyRecord {
        let valid = (options.reports - options.invalid) as u64;
        let floor = super::dap::FLOOR.min(valid);
        HeavyRecord {
            vdaf: options.vdaf.to_string(),
            aggregation: aggregation.to_string(),
            window: window.name(),
            reports: options.reports,
            invalid: options.invalid,
            threshold: options
                .heavy
                .threshold
                .unwrap_or(((valid as f64 * THRESHOLD_SHARE).ceil() as u64).max(floor)),
            step: options.heavy.step.unwrap_or(STEP),
            strings: uploads
                .strings
                .iter()
                .map(|(s, &count)| (String::from_utf8_lossy(s).into_owned(), count))
                .collect(),
            stages,
        }
    }

    fn load(dir: &Path) -> Result<HeavyRecord> {
        let path = dir.join(RECORD);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}: --resume finishes a heavy-hitters demo (--vdaf poplar1:BITS) in the folder it ran in",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::files::write_atomically(&dir.join(RECORD), text.as_bytes())
    }

    fn settings(&self) -> HeavySettings {
        HeavySettings {
            threshold: self.threshold,
            step: self.step,
        }
    }
}

/// Finishes the heavy-hitters demo stopped in `dir`: its traversal from where it stands,
/// then the comparison with the truth, as the first run would have ended.
pub(super) fn resume(dir: &Path, progress: &dyn Progress) -> Result<DemoReport> {
    let record = HeavyRecord::load(dir)?;
    let d = Deployment::in_folder(dir);
    let servers = [Server::load(&d.servers[0])?, Server::load(&d.servers[1])?];
    let portal = Portal::load(&d.portal)?;
    let window = Window::parse_name(&record.window).ok_or_else(|| {
        anyhow!(
            "{}: window {:?} is not a window's name",
            RECORD,
            record.window
        )
    })?;
    let aggregation = record.aggregation.clone();
    let run = HeavyRun {
        servers: &servers,
        portal: &portal,
        aggregation: &aggregation,
        window,
        dir,
    };
    run.finish(record, progress)
}

/// The parties of a demo's traversal.
pub(super) struct HeavyRun<'a> {
    pub servers: &'a [Server; 2],
    pub portal: &'a Portal,
    pub aggregation: &'a str,
    pub window: Window,
    /// The demo's folder, where the record is kept.
    pub dir: &'a Path,
}

impl HeavyRun<'_> {
    /// Runs the traversal (or what is left of it) and compares what it found with the
    /// truth.
    pub(super) fn finish(
        &self,
        mut record: HeavyRecord,
        progress: &dyn Progress,
    ) -> Result<DemoReport> {
        record.save(self.dir)?;
        let result = self.traverse(&mut record, progress)?;
        let truth: Vec<(String, u64)> = record
            .strings
            .iter()
            .filter(|(_, &count)| count >= record.threshold)
            .map(|(s, &count)| (s.clone(), count))
            .collect();
        let found: Vec<(String, u64)> = result
            .heavy_hitters
            .iter()
            .map(|h| {
                (
                    h.string.clone().unwrap_or_else(|| format!("0x{}", h.hex)),
                    h.count,
                )
            })
            .collect();
        // Rows: every string either side has, most common (truly) first.
        let mut labels: Vec<String> = truth.iter().map(|(s, _)| s.clone()).collect();
        labels.sort_by_key(|s| std::cmp::Reverse(record.strings.get(s)));
        for (s, _) in &found {
            if !labels.contains(s) {
                labels.push(s.clone());
            }
        }
        let count_of = |list: &[(String, u64)], label: &String| {
            list.iter()
                .find(|(s, _)| s == label)
                .map_or(0, |(_, c)| u128::from(*c))
        };
        Ok(DemoReport {
            dir: self.dir.to_path_buf(),
            vdaf: record.vdaf.parse::<DemoVdaf>()?,
            truth: labels.iter().map(|l| count_of(&truth, l)).collect(),
            result: labels.iter().map(|l| count_of(&found, l)).collect(),
            labels: Some(labels),
            reports: record.reports as u64,
            clients: result.reports,
            invalid_injected: record.invalid,
            invalid_found: result.invalid_reports,
            invalid: self.invalid_listed_by_server_0(result.passes)?,
            stages: record.stages,
        })
    }

    /// Turns of every party until the portal has the heavy hitters; the record is saved
    /// after each pass with its timing.
    fn traverse(
        &self,
        record: &mut HeavyRecord,
        progress: &dyn Progress,
    ) -> Result<collect_heavy::HeavyResult> {
        let settings = record.settings();
        // At most two turns a pass (ask, then read the sum parts), and a pass per level.
        let bits = match self.portal.dap.as_ref().map(|d| d.task.vdaf()) {
            Some(crate::dap::VdafConfig::Poplar1 { bits }) => usize::from(*bits),
            _ => bail!("the heavy-hitters demo needs a Poplar1 task"),
        };
        for _ in 0..2 * bits + 2 {
            let step =
                collect_heavy::advance(self.portal, self.aggregation, &self.window, settings)?;
            let (pass, level, prefixes) = match step {
                HeavyProgress::Done(result) => return Ok(result),
                HeavyProgress::Asked(p) | HeavyProgress::Waiting { pass: p, .. } => {
                    (p.pass, p.level, p.prefixes)
                }
            };
            let name = format!("pass {pass} (level {level}, {prefixes} prefixes)");
            timed(progress, &name, 0, &mut record.stages, |tick| {
                // Each server twice: a round waits for the peer's previous one.
                for server in self.servers.iter().chain(self.servers) {
                    heavy::advance(server, self.aggregation, &self.window, Shard::ALL, tick)?;
                }
                Ok(())
            })?;
            record.save(self.dir)?;
        }
        bail!("the traversal did not end in {} turns", 2 * bits + 2)
    }

    /// The reports server 0's last sum part lists invalid, with its reasons.
    fn invalid_listed_by_server_0(&self, passes: u32) -> Result<Vec<Rejected>> {
        let server = &self.servers[0];
        let id = PassId {
            instance: server.instance.clone(),
            aggregation: self.aggregation.to_string(),
            window: self.window,
            index: passes.saturating_sub(1),
        };
        let part = read_pass_sum_part(
            server.sum_parts.as_ref(),
            &id,
            server.index,
            &server.own_trust,
        )?
        .ok_or_else(|| anyhow!("{id}: server 0's sum part is gone"))?;
        Ok(part
            .invalid
            .into_iter()
            .map(|r| Rejected {
                uuid: r.report_id,
                reason: r.reason,
            })
            .collect())
    }
}
