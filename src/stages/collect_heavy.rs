//! Heavy hitters, the portal's side: drives a Poplar1 traversal over a window's reports
//! one pass at a time. Each call replays the traversal from what is stored (its own
//! signed queries and the servers' sum parts), so it is idempotent and resumes after a
//! kill: it asks for the first pass not asked yet, waits while a pass's sum parts are
//! missing, and once the last pass is summed writes the heavy hitters to the results
//! location (`{aggregation}/{window}.heavy-hitters.json|csv`).
//!
//! The collector sees every candidate prefix's count (that is how it picks the next
//! pass); what it reveals are only the strings whose count reaches the threshold.

use crate::batch::{
    create_pass_query, read_pass_query, read_pass_sum_part, PassId, PassQuery, PassSumPart, Window,
};
use crate::config::{dap::CollectorDap, Portal};
use crate::crypto::TrustSet;
use crate::dap::aggregate_share::AggregateShareAad;
use crate::dap::messages::HpkeCiphertext;
use crate::dap::poplar1::{Next, Pass, Poplar1Vdaf, Traversal};
use crate::dap::Role;
use crate::ids::ServerIndex;
use crate::store::put_bytes;
use anyhow::{anyhow, bail, Context, Result};

/// How the traversal picks candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeavySettings {
    /// A prefix (and a string) is kept when at least this many reports carry it.
    pub threshold: u64,
    /// Levels each pass goes down (1 = every level).
    pub step: usize,
}

/// Where a traversal stands after one call of [`advance`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HeavyProgress {
    /// A pass was just asked of both servers.
    Asked(PassState),
    /// A pass's sum parts are not both written yet.
    Waiting {
        #[serde(flatten)]
        pass: PassState,
        missing: Vec<String>,
    },
    Done(HeavyResult),
}

/// One pass of the traversal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassState {
    pub pass: u32,
    pub level: usize,
    pub prefixes: usize,
}

/// The heavy hitters of a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeavyResult {
    pub aggregation: String,
    pub window: String,
    pub task_id: String,
    pub bits: usize,
    pub threshold: u64,
    pub step: usize,
    pub passes: u32,
    /// Reports counted at the last pass (valid through every pass).
    pub reports: u64,
    /// Reports the last pass found invalid (either server's list).
    pub invalid_reports: usize,
    /// The noise the servers added to every count (differential privacy), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
    /// Most common first.
    pub heavy_hitters: Vec<HeavyHitterRow>,
}

/// One string whose count reached the threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeavyHitterRow {
    /// The string as text when it is UTF-8, else None (see `hex`).
    pub string: Option<String>,
    /// Its bytes, zero padding dropped, in hex.
    pub hex: String,
    pub count: u64,
}

/// Does the portal's next step of the traversal of `aggregation`'s reports in `window`.
pub fn advance(
    portal: &Portal,
    aggregation: &str,
    window: &Window,
    settings: HeavySettings,
) -> Result<HeavyProgress> {
    crate::batch::validate_name("aggregation", aggregation).map_err(anyhow::Error::msg)?;
    let collector = portal.dap.as_ref().ok_or_else(|| {
        anyhow!("heavy hitters need a Poplar1 task: the portal config has no [dap] section")
    })?;
    let poplar = Poplar1Vdaf::new(&collector.task).map_err(|e| anyhow!("dap.task: {e}"))?;
    let key = portal.signing_key.as_ref().ok_or_else(|| {
        anyhow!("the portal signs the pass queries it sends the servers: configure signing_key")
    })?;
    let mut own = TrustSet::new();
    own.insert(key.key_id(), key.verifying_key());
    let traversal = Traversal::new(poplar.bits(), settings.threshold, settings.step)
        .map_err(|e| anyhow!("{e}"))?;
    let task_id = collector.task.task_id().0;
    let mut pass = traversal.first().map_err(|e| anyhow!("{e}"))?;
    for index in 0u32.. {
        let ids = [ServerIndex::Zero, ServerIndex::One].map(|s| PassId {
            instance: portal.servers[s.number() as usize].instance.clone(),
            aggregation: aggregation.to_string(),
            window: *window,
            index,
        });
        let query = PassQuery {
            task_id,
            pass: pass.encode().map_err(|e| anyhow!("{e}"))?,
            threshold: settings.threshold,
        };
        let state = PassState {
            pass: index,
            level: pass.level(),
            prefixes: pass.len(),
        };
        let mut asked = false;
        for (server, id) in portal.servers.iter().zip(&ids) {
            let store = server.sum_parts.as_ref();
            match read_pass_query(store, id, &own)? {
                Some(found) if found == query => {}
                Some(found) => bail!(
                    "{}: this traversal was asked with other settings (threshold {}; this call's {} with step {}), or the task changed: collect it with the settings it began with",
                    store.describe(&id.query_name()),
                    found.threshold,
                    settings.threshold,
                    settings.step
                ),
                None => {
                    create_pass_query(store, id, &query, key)?;
                    asked = true;
                }
            }
        }
        if asked {
            tracing::info!(
                pass = index,
                level = pass.level(),
                prefixes = pass.len(),
                "pass asked"
            );
            return Ok(HeavyProgress::Asked(state));
        }
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        let indices = [ServerIndex::Zero, ServerIndex::One];
        for ((server, id), index) in portal.servers.iter().zip(&ids).zip(indices) {
            match read_pass_sum_part(server.sum_parts.as_ref(), id, index, &server.trust)? {
                Some(part) => parts.push(part),
                None => missing.push(server.sum_parts.describe(&id.sum_name(index))),
            }
        }
        if !missing.is_empty() {
            return Ok(HeavyProgress::Waiting {
                pass: state,
                missing,
            });
        }
        let counts = counts_of(collector, &poplar, &pass, &ids[0], window, &parts)?;
        match traversal.next(&pass, &counts).map_err(|e| anyhow!("{e}"))? {
            Next::Pass(next) => pass = next,
            Next::Done(hitters) => {
                let result = HeavyResult {
                    aggregation: aggregation.to_string(),
                    window: window.name(),
                    task_id: collector.task.task_id().to_base64url(),
                    bits: poplar.bits(),
                    threshold: settings.threshold,
                    step: settings.step,
                    passes: index + 1,
                    reports: parts[0].report_count,
                    invalid_reports: invalid_count(&parts),
                    noise: (collector.task.params().dp)
                        .map(|dp| dp.describe(collector.task.vdaf())),
                    heavy_hitters: hitters
                        .into_iter()
                        .map(|h| HeavyHitterRow {
                            string: h.string.text(),
                            // A heavy hitter is a whole string (the last level).
                            hex: crate::batch::hex(&h.string.string_bytes().unwrap_or_default()),
                            count: h.count,
                        })
                        .collect(),
                };
                write_result(portal, &result)?;
                return Ok(HeavyProgress::Done(result));
            }
        }
    }
    unreachable!("the loop returns")
}

/// The per-prefix counts of a pass from both sum parts, after checking they agree.
fn counts_of(
    collector: &CollectorDap,
    poplar: &Poplar1Vdaf,
    pass: &Pass,
    id: &PassId,
    window: &Window,
    parts: &[PassSumPart],
) -> Result<Vec<u64>> {
    let [a, b] = parts else {
        bail!("{id}: expected two sum parts");
    };
    let mut diffs = Vec::new();
    if a.report_count != b.report_count {
        diffs.push(format!(
            "report_count {} vs {}",
            a.report_count, b.report_count
        ));
    }
    if a.checksum != b.checksum {
        diffs.push("checksum over the counted report ids".to_string());
    }
    if a.batches != b.batches {
        diffs.push(format!(
            "batches ({} vs {})",
            a.batches.len(),
            b.batches.len()
        ));
    }
    for (whose, part) in [("server 0", a), ("server 1", b)] {
        if part.task_id != collector.task.task_id().0 {
            diffs.push(format!("{whose}'s task"));
        }
        if part.pass != pass.encode().map_err(|e| anyhow!("{e}"))? {
            diffs.push(format!("{whose}'s pass"));
        }
    }
    if !diffs.is_empty() {
        bail!(
            "{id}: the servers' sum parts disagree ({}); nothing revealed",
            diffs.join(", ")
        );
    }
    let task = &collector.task;
    let interval = super::judges::window_interval(window, task.time_precision())?;
    let binding = task.aad_task_binding();
    let pass_bytes = &a.pass;
    let open = |part: &PassSumPart, sender: Role| -> Result<Vec<u8>> {
        let mut aad = AggregateShareAad::for_task(task, &binding, interval);
        aad.agg_param = pass_bytes;
        let ciphertext = HpkeCiphertext {
            config_id: part.collector_config_id,
            enc: part.enc.clone(),
            payload: part.payload.clone(),
        };
        collector
            .hpke
            .open_aggregate_share(sender, &ciphertext, &aad)
            .with_context(|| format!("{id}: opening the {} sum part", sender.name()))
    };
    let leader = open(a, Role::Leader)?;
    let helper = open(b, Role::Helper)?;
    // Noisy counts may be negative; the traversal keeps none of those anyway.
    let counts = poplar
        .unshard_signed(pass, [&leader, &helper])
        .map_err(|e| anyhow!("{id}: {e}"))?;
    Ok(counts
        .into_iter()
        .map(|c| c.max(0).unsigned_abs())
        .collect())
}

/// Reports either server found invalid, each counted once (a report id twice, in two
/// batches, counts twice).
fn invalid_count(parts: &[PassSumPart]) -> usize {
    let ids: std::collections::BTreeSet<_> = parts
        .iter()
        .flat_map(|p| p.invalid.iter().map(|r| (&r.batch, r.report_id)))
        .collect();
    ids.len()
}

fn write_result(portal: &Portal, result: &HeavyResult) -> Result<()> {
    let stem = format!("{}/{}.heavy-hitters", result.aggregation, result.window);
    put_bytes(
        portal.results.as_ref(),
        &format!("{stem}.json"),
        &serde_json::to_vec_pretty(result)?,
    )?;
    let mut csv = String::from("string,hex,count\n");
    for h in &result.heavy_hitters {
        let text = h.string.as_deref().unwrap_or("").replace('"', "\"\"");
        csv.push_str(&format!("\"{text}\",{},{}\n", h.hex, h.count));
    }
    put_bytes(
        portal.results.as_ref(),
        &format!("{stem}.csv"),
        csv.as_bytes(),
    )?;
    Ok(())
}
