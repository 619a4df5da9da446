//! The heavy-hitters demo (a Poplar1 task): once the reports are ingested, the traversal
//! runs as its parties would run it, turn by turn: the portal asks a pass, each server
//! runs what it can of it, until the portal has the strings whose count reaches the
//! threshold. They must be exactly the true ones, with their true counts.

use super::clients::Uploads;
use super::{timed, DemoOptions, DemoReport, Progress, StageTiming};
use crate::batch::{read_pass_sum_part, PassId, Window};
use crate::config::{Portal, Server};
use crate::stages::collect_heavy::{self, HeavyProgress, HeavySettings};
use crate::stages::{heavy, Rejected};
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;

/// The share of reports a string must reach to be a heavy hitter in the demo (and at
/// least the servers' `min_clients`, which they hold every revealed count to).
const THRESHOLD_SHARE: f64 = 0.02;
/// Levels each pass goes down: 4 took less time than 2 over 256-bit strings (README).
const STEP: usize = 4;

/// The parties of a demo's traversal.
pub(super) struct HeavyRun<'a> {
    pub servers: &'a [Server; 2],
    pub portal: &'a Portal,
    pub aggregation: &'a str,
    pub window: Window,
}

impl HeavyRun<'_> {
    /// Runs the traversal and compares what it found with the truth.
    pub(super) fn finish(
        &self,
        options: &DemoOptions,
        dir: PathBuf,
        uploads: Uploads,
        mut stages: Vec<StageTiming>,
        progress: &dyn Progress,
    ) -> Result<DemoReport> {
        let valid = (options.reports - options.invalid) as u64;
        let floor = super::dap::FLOOR.min(valid);
        let settings = HeavySettings {
            threshold: options
                .heavy
                .threshold
                .unwrap_or(((valid as f64 * THRESHOLD_SHARE).ceil() as u64).max(floor)),
            step: options.heavy.step.unwrap_or(STEP),
        };
        let result = self.traverse(settings, &mut stages, progress)?;
        let truth: Vec<(String, u64)> = uploads
            .strings
            .iter()
            .filter(|(_, &count)| count >= settings.threshold)
            .map(|(s, &count)| (String::from_utf8_lossy(s).into_owned(), count))
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
        labels.sort_by_key(|s| std::cmp::Reverse(uploads.strings.get(s.as_bytes())));
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
            dir,
            vdaf: options.vdaf.clone(),
            truth: labels.iter().map(|l| count_of(&truth, l)).collect(),
            result: labels.iter().map(|l| count_of(&found, l)).collect(),
            labels: Some(labels),
            reports: options.reports as u64,
            clients: result.reports,
            invalid_injected: options.invalid,
            invalid_found: result.invalid_reports,
            invalid: self.invalid_listed_by_server_0(result.passes)?,
            stages,
        })
    }

    /// Turns of every party until the portal has the heavy hitters.
    fn traverse(
        &self,
        settings: HeavySettings,
        stages: &mut Vec<StageTiming>,
        progress: &dyn Progress,
    ) -> Result<collect_heavy::HeavyResult> {
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
            timed(progress, &name, 0, stages, |tick| {
                // Each server twice: a round waits for the peer's previous one.
                for server in self.servers.iter().chain(self.servers) {
                    heavy::advance(server, self.aggregation, &self.window, tick)?;
                }
                Ok(())
            })?;
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
