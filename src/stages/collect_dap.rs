//! Collect for a DAP task (the collector): read both servers' signed `DapSumPart`s of a
//! window, check each is the part asked for and that both aggregated the same reports
//! (batches, report count, report-id checksum, invalid lists, interval), open both
//! aggregate shares with the collector's HPKE key, and unshard them into the VDAF's
//! result. The same checks of signatures, digests and signed window as for ENPA parts.

use super::collect::{
    check_request, missing_sum_part, refuse_disagreement, CollectOptions, SignedWindow,
};
use crate::batch::{run_name, BatchError, SumPartId, VerifiedSumPart, Window};
use crate::config::{dap::CollectorDap, Portal, PortalServer};
use crate::dap::aggregate_share::{AggregateShareAad, BatchInterval};
use crate::dap::messages::HpkeCiphertext;
use crate::dap::{Role, TaskVdaf, VdafConfig};
use crate::ids::ServerIndex;
use crate::store::put_bytes;
use crate::wire::DapSumPart;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A DAP task's result for one run of a window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DapCollectResult {
    pub aggregation: String,
    pub window: String,
    pub task_id: String,
    /// The VDAF's name (count, sum, sumvec, histogram, multihot).
    pub vdaf: String,
    /// Reports aggregated (DAP's report_count).
    pub report_count: u64,
    pub invalid_reports: usize,
    pub batches: Vec<Uuid>,
    /// The VDAF's result: a number (count, sum) or one per position.
    pub result: serde_json::Value,
    /// What each position counts, for vector results: a histogram's bucket or a vector's
    /// index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// A DP task's noise (mechanism, scale, epsilon): the values are noisy, and may be
    /// negative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
    /// Whether noisy values below zero were shown as 0 (`collect --clamp`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clamped: bool,
}

/// A DP task's values as the VDAF's result shape: one number for count and sum, a list
/// otherwise; below zero as they are, or 0 when clamped.
fn noisy_result(vdaf: &VdafConfig, values: Vec<i128>, clamp: bool) -> serde_json::Value {
    // A number JSON readers take exactly, else its text (as unnoised results do).
    let number = |v: i128| match i64::try_from(v) {
        Ok(n) => serde_json::json!(n),
        Err(_) => serde_json::json!(v.to_string()),
    };
    let shown: Vec<serde_json::Value> = values
        .into_iter()
        .map(|v| number(if clamp { v.max(0) } else { v }))
        .collect();
    match vdaf {
        VdafConfig::Count | VdafConfig::Sum { .. } => shown.into_iter().next().unwrap_or_default(),
        _ => serde_json::Value::Array(shown),
    }
}

/// Reads one server's DAP sum part and checks it is the part asked for, of the task.
fn read_part(
    server: &PortalServer,
    id: &SumPartId,
    dap: &CollectorDap,
) -> Result<VerifiedSumPart<DapSumPart>> {
    let store = server.sum_parts.as_ref();
    let signature = store.describe(&id.names().signature);
    let part = match crate::batch::read_sum_part::<DapSumPart>(store, id, &server.trust) {
        Err(BatchError::Store(e)) if e.is_not_found() && e.object == signature && id.run == 0 => {
            return Err(missing_sum_part(store, id, &signature))
        }
        read => read?,
    };
    let r = &part.record;
    let signed = SignedWindow {
        name: &r.name,
        start_ms: r.aggregation_start_time,
        end_ms: r.aggregation_end_time,
    };
    let object = &part.object;
    check_request(&signed, part.binding.as_ref(), id).map_err(|e| anyhow!("{object}: {e}"))?;
    if r.task_id != dap.task.task_id().0 {
        bail!(
            "{object}: a sum part of another DAP task than the portal's (dap.task {})",
            dap.task.task_id().to_base64url()
        );
    }
    Ok(part)
}

/// Both parts must describe the same aggregation of the same reports.
fn check_agreement(a: &VerifiedSumPart<DapSumPart>, b: &VerifiedSumPart<DapSumPart>) -> Result<()> {
    let (x, y) = (&a.record, &b.record);
    let mut diffs = Vec::new();
    let batches = |p: &DapSumPart| p.batch_uuids.iter().copied().collect::<BTreeSet<_>>();
    if batches(x) != batches(y) {
        diffs.push("they cover different batches".to_string());
    }
    let mut field = |name: &str, l: String, r: String| {
        if l != r {
            diffs.push(format!("{name} {l} vs {r}"));
        }
    };
    field(
        "report_count",
        x.report_count.to_string(),
        y.report_count.to_string(),
    );
    field(
        "checksum",
        crate::batch::hex(&x.checksum),
        crate::batch::hex(&y.checksum),
    );
    field(
        "interval",
        format!("{}+{}", x.interval_start, x.interval_duration),
        format!("{}+{}", y.interval_start, y.interval_duration),
    );
    if let (Some(bx), Some(by)) = (&a.binding, &b.binding) {
        field("run", bx.run.to_string(), by.run.to_string());
    }
    refuse_disagreement(a, b, diffs)
}

/// Opens a part's aggregate share, sealed by `sender` for the window's interval.
fn open_share(
    dap: &CollectorDap,
    part: &VerifiedSumPart<DapSumPart>,
    sender: Role,
    interval: BatchInterval,
) -> Result<Vec<u8>> {
    let r = &part.record;
    let config_id = u8::try_from(r.collector_config_id)
        .map_err(|_| anyhow!("{}: collector_config_id out of range", part.object))?;
    let task_binding = dap.task.aad_task_binding();
    let aad = AggregateShareAad::for_task(&dap.task, &task_binding, interval);
    let ciphertext = HpkeCiphertext {
        config_id,
        enc: r.encrypted_aggregate_share_enc.clone(),
        payload: r.encrypted_aggregate_share_payload.clone(),
    };
    dap.hpke
        .open_aggregate_share(sender, &ciphertext, &aad)
        .with_context(|| format!("{}: opening its aggregate share", part.object))
}

/// Collects one run of a DAP task's window and writes the result (JSON and CSV) to the
/// portal's results location as `{aggregation}/{run name}.result.json|csv`.
pub fn collect_dap(
    portal: &Portal,
    aggregation: &str,
    window: &Window,
    run: u32,
    options: CollectOptions,
) -> Result<DapCollectResult> {
    let dap = portal.dap.as_ref().ok_or_else(|| {
        anyhow!("{aggregation}: its sum parts are a DAP task's, but the portal config has no [dap] section (the task and the collector's key)")
    })?;
    let part = |index: ServerIndex| {
        let server = &portal.servers[usize::from(index.number())];
        let id = SumPartId {
            instance: server.instance.clone(),
            aggregation: aggregation.to_string(),
            window: *window,
            run,
            server: index,
        };
        read_part(server, &id, dap)
    };
    let (p0, p1) = (part(ServerIndex::Zero)?, part(ServerIndex::One)?);
    check_agreement(&p0, &p1)?;
    let interval = super::judges::window_interval(window, dap.task.time_precision())?;
    let signed = (p0.record.interval_start, p0.record.interval_duration);
    if (u64::try_from(signed.0).ok(), u64::try_from(signed.1).ok())
        != (Some(interval.start), Some(interval.duration))
    {
        bail!(
            "{}: interval {}+{} is not the window's {}+{} (units of {} s)",
            p0.object,
            signed.0,
            signed.1,
            interval.start,
            interval.duration,
            dap.task.time_precision()
        );
    }
    let report_count = u64::try_from(p0.record.report_count).map_err(|_| {
        anyhow!(
            "{}: report_count {} is negative",
            p0.object,
            p0.record.report_count
        )
    })?;
    for part in [&p0, &p1] {
        if let Some(b) = &part.binding {
            if b.valid_clients != report_count {
                bail!(
                    "{}: counts {} valid clients but report_count {report_count}",
                    part.object,
                    b.valid_clients
                );
            }
        }
    }
    let min = dap.task.params().min_batch_size;
    if report_count < min {
        bail!(
            "sum parts {} and {}: {report_count} reports, fewer than the task's min_batch_size {min}: not opened",
            p0.object,
            p1.object
        );
    }
    let leader = open_share(dap, &p0, Role::Leader, interval)?;
    let helper = open_share(dap, &p1, Role::Helper, interval)?;
    let vdaf = TaskVdaf::new(&dap.task)?;
    let count = usize::try_from(report_count)?;
    let combining = || format!("combining {} and {}", p0.object, p1.object);
    let (result, noise) = match &dap.task.params().dp {
        None => (
            vdaf.unshard([&leader, &helper], count)
                .with_context(combining)?
                .to_json(),
            None,
        ),
        Some(dp) => {
            let values = vdaf
                .unshard_signed([&leader, &helper])
                .with_context(combining)?;
            (
                noisy_result(dap.task.vdaf(), values, options.clamp_negative),
                Some(dp.describe(dap.task.vdaf())),
            )
        }
    };
    let result = DapCollectResult {
        aggregation: aggregation.to_string(),
        window: run_name(window, run),
        task_id: dap.task.task_id().to_base64url(),
        vdaf: dap.task.vdaf().name().to_string(),
        report_count,
        invalid_reports: p0.invalid.len(),
        batches: p0.record.batch_uuids.clone(),
        labels: labels(dap.task.vdaf()),
        result,
        clamped: noise.is_some() && options.clamp_negative,
        noise,
    };
    let stem = format!("{aggregation}/{}.result", run_name(window, run));
    put_bytes(
        portal.results.as_ref(),
        &format!("{stem}.json"),
        &serde_json::to_vec_pretty(&result)?,
    )?;
    put_bytes(
        portal.results.as_ref(),
        &format!("{stem}.csv"),
        dap_result_csv(&result).as_bytes(),
    )?;
    Ok(result)
}

/// Position labels of a vector result: buckets of a histogram, indices otherwise.
fn labels(vdaf: &VdafConfig) -> Vec<String> {
    match vdaf {
        VdafConfig::Count | VdafConfig::Sum { .. } | VdafConfig::Poplar1 { .. } => Vec::new(),
        VdafConfig::SumVec { length, .. }
        | VdafConfig::Histogram { length, .. }
        | VdafConfig::MultihotCountVec { length, .. } => {
            (0..*length).map(|i| i.to_string()).collect()
        }
    }
}

/// The result's rows: `label,value`, or the single value under the VDAF's name.
pub fn dap_result_rows(result: &DapCollectResult) -> Vec<(String, String)> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match result.result.as_array() {
        Some(values) => values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let label = result
                    .labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| i.to_string());
                (label, text(v))
            })
            .collect(),
        None => vec![(result.vdaf.clone(), text(&result.result))],
    }
}

pub fn dap_result_csv(result: &DapCollectResult) -> String {
    let header = match result.result.is_array() {
        true => "bucket,value\n",
        false => "measure,value\n",
    };
    let mut csv = String::from(header);
    for (label, value) in dap_result_rows(result) {
        csv.push_str(&format!("{label},{value}\n"));
    }
    csv
}
