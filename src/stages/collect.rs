//! Collect (the portal): read both servers' sum parts of a window, verify signatures and
//! digests, check that each is the part asked for (by its signed fields, not its object
//! name) and that they cover the same batches and clients, add them mod p, and refuse a
//! result no honest pair of parts can give.

use crate::batch::{run_name, BatchError, SumPartBinding, SumPartId, VerifiedSumPart, Window};
use crate::config::{Portal, PortalServer};
use crate::ids::ServerIndex;
use crate::store::{put_bytes, ObjectStore};
use crate::vdaf::{combine, PRIME};
use crate::wire::SumPart;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A sum part the portal was asked for that is not there (yet): collect waits for it
/// rather than failing. `reason` says whether its whole location is missing too.
#[derive(Debug, thiserror::Error)]
#[error("{object}: no sum part yet; {reason}")]
pub struct SumPartNotYetWritten {
    pub object: String,
    pub reason: String,
}

/// Why a sum part is missing: only the part (the server has not summed the window yet),
/// or its whole location (nothing written there yet, or a mistyped path in the portal
/// config: said, since it would wait for ever).
pub(super) fn missing_sum_part(
    store: &dyn ObjectStore,
    id: &SumPartId,
    object: &str,
) -> anyhow::Error {
    let server = id.server.number();
    let location = store.describe("");
    let reason = match store.exists() {
        Ok(true) => format!("server {server} has not summed this window (is its aggregate done?)"),
        Ok(false) => format!(
            "server {server}'s sum_parts location {location} does not exist: nothing written there yet, or a mistyped path in the portal config"
        ),
        Err(e) => return anyhow::anyhow!("{object}: sum part missing, and its location {location} cannot be checked: {e}"),
    };
    anyhow::Error::new(SumPartNotYetWritten {
        object: object.to_string(),
        reason,
    })
}

/// Reads one server's sum part (`batch::read_sum_part`) and checks it is the part asked
/// for and its sum is made of field elements.
pub fn read_sum_part(server: &PortalServer, id: &SumPartId) -> Result<VerifiedSumPart> {
    let store = server.sum_parts.as_ref();
    let signature = store.describe(&id.names().signature);
    let part = match crate::batch::read_sum_part(store, id, &server.trust) {
        // A window's regular run is summed on the servers' schedule: wait for it. A late
        // run exists only once a server decided one; asking for another is an error.
        Err(BatchError::Store(e)) if e.is_not_found() && e.object == signature && id.run == 0 => {
            return Err(missing_sum_part(store, id, &signature))
        }
        read => read?,
    };
    let object = &part.object;
    check_sum(&part.record).map_err(|reason| anyhow::anyhow!("{object}: {reason}"))?;
    let r = &part.record;
    let signed = SignedWindow {
        name: &r.name,
        start_ms: r.aggregation_start_time,
        end_ms: r.aggregation_end_time,
    };
    check_request(&signed, part.binding.as_ref(), id)
        .map_err(|reason| anyhow::anyhow!("{object}: {reason}"))?;
    Ok(part)
}

/// What every kind of sum part signs about where it belongs.
pub(super) struct SignedWindow<'a> {
    pub name: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The signed fields must be those of the part asked for: a part copied over another
/// window's, aggregation's, run's, instance's or server's object name is refused.
pub(super) fn check_request(
    signed: &SignedWindow,
    binding: Option<&SumPartBinding>,
    id: &SumPartId,
) -> std::result::Result<(), String> {
    let mut wrong = Vec::new();
    if signed.name != id.aggregation {
        wrong.push(format!(
            "aggregation {:?}, not {:?}",
            signed.name, id.aggregation
        ));
    }
    let (start, end) = (
        id.window.start.timestamp_millis(),
        id.window.end.timestamp_millis(),
    );
    if (signed.start_ms, signed.end_ms) != (start, end) {
        wrong.push(format!(
            "window {}-{} (ms), not {start}-{end}",
            signed.start_ms, signed.end_ms
        ));
    }
    match binding {
        Some(b) => {
            let pairs = [
                ("run", b.run.to_string(), id.run.to_string()),
                ("instance", format!("{:?}", b.instance), format!("{:?}", id.instance)),
                ("server", b.server.to_string(), id.server.to_string()),
            ];
            for (field, signed, asked) in pairs {
                if signed != asked {
                    wrong.push(format!("{field} {signed}, not {asked}"));
                }
            }
        }
        // The original aggregator binds no run: its parts are regular runs only.
        None if id.run != 0 => wrong.push(format!(
            "no run binding (a part in the original aggregator's form, which is always run 0), not run {}",
            id.run
        )),
        None => {}
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "is not the sum part asked for: its signed fields say {}",
            wrong.join("; ")
        ))
    }
}

/// A sum is `bins` field elements: each below p, as both servers write them. Checked per
/// sum part, so an error names the part at fault.
fn check_sum(record: &SumPart) -> std::result::Result<(), String> {
    if usize::try_from(record.bins).ok() != Some(record.sum.len()) {
        return Err(format!(
            "sum has {} values, but bins is {}",
            record.sum.len(),
            record.bins
        ));
    }
    match record
        .sum
        .iter()
        .enumerate()
        .find(|(_, &v)| !(0..i64::from(PRIME)).contains(&v))
    {
        Some((i, v)) => Err(format!(
            "sum[{i}] = {v} is not a field element (must be below {PRIME})"
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectResult {
    pub aggregation: String,
    pub window: String,
    pub bins: i32,
    pub epsilon: f64,
    /// Packets judged by their proof, valid or not (as the original aggregator counts).
    pub total_individual_clients: i64,
    /// Packets counted in the histogram; unknown (None) when either part comes from the
    /// original aggregator, which does not record it.
    pub valid_clients: Option<u64>,
    pub invalid_packets: usize,
    pub batches: Vec<Uuid>,
    pub histogram: Vec<u64>,
}

/// Checks that the two sum parts describe the same aggregation run.
pub fn check_agreement(a: &VerifiedSumPart, b: &VerifiedSumPart) -> Result<()> {
    let (x, y) = (&a.record, &b.record);
    let mut diffs = Vec::new();
    let batches = |p: &SumPart| p.batch_uuids.iter().copied().collect::<BTreeSet<_>>();
    let (bx, by) = (batches(x), batches(y));
    if bx != by {
        let only = |l: &BTreeSet<Uuid>, r: &BTreeSet<Uuid>| {
            l.difference(r)
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        diffs.push(format!(
            "they cover different batches (only in server 0: [{}]; only in server 1: [{}])",
            only(&bx, &by),
            only(&by, &bx)
        ));
    }
    if x.total_individual_clients != y.total_individual_clients {
        diffs.push(format!(
            "total_individual_clients {} vs {}",
            x.total_individual_clients, y.total_individual_clients
        ));
    }
    let mut field = |name: &str, l: String, r: String| {
        if l != r {
            diffs.push(format!("{name} {l} vs {r}"));
        }
    };
    field("name", x.name.clone(), y.name.clone());
    field("bins", x.bins.to_string(), y.bins.to_string());
    field(
        "sum length",
        x.sum.len().to_string(),
        y.sum.len().to_string(),
    );
    field("epsilon", x.epsilon.to_string(), y.epsilon.to_string());
    field("prime", x.prime.to_string(), y.prime.to_string());
    field(
        "number_of_servers",
        x.number_of_servers.to_string(),
        y.number_of_servers.to_string(),
    );
    field(
        "aggregation_start_time",
        x.aggregation_start_time.to_string(),
        y.aggregation_start_time.to_string(),
    );
    field(
        "aggregation_end_time",
        x.aggregation_end_time.to_string(),
        y.aggregation_end_time.to_string(),
    );
    if let (Some(bx), Some(by)) = (&a.binding, &b.binding) {
        field("run", bx.run.to_string(), by.run.to_string());
        field(
            "valid clients",
            bx.valid_clients.to_string(),
            by.valid_clients.to_string(),
        );
    }
    refuse_disagreement(a, b, diffs)
}

/// Adds a difference in the two parts' invalid lists to `diffs`, and refuses the pair,
/// naming both, if any difference was found.
pub(super) fn refuse_disagreement<R>(
    a: &VerifiedSumPart<R>,
    b: &VerifiedSumPart<R>,
    mut diffs: Vec<String>,
) -> Result<()> {
    let invalid = |p: &VerifiedSumPart<R>| p.invalid.iter().copied().collect::<BTreeSet<_>>();
    if invalid(a) != invalid(b) {
        diffs.push(format!(
            "invalid packet lists differ ({} vs {} packets)",
            a.invalid.len(),
            b.invalid.len()
        ));
    }
    if !diffs.is_empty() {
        bail!(
            "sum parts {} and {} do not agree: {}",
            a.object,
            b.object,
            diffs.join("; ")
        );
    }
    Ok(())
}

/// Reads, checks and combines both sum parts of a window; writes the result (JSON and CSV)
/// to the portal's results location as `{aggregation}/{window}.result.json|csv`.
pub fn collect(portal: &Portal, aggregation: &str, window: &Window) -> Result<CollectResult> {
    collect_run(portal, aggregation, window, 0)
}

/// Collects one run of a window: 0 is its regular run, k >= 1 its k-th late run; the
/// result is `{aggregation}/{run name}.result.json|csv`.
pub fn collect_run(
    portal: &Portal,
    aggregation: &str,
    window: &Window,
    run: u32,
) -> Result<CollectResult> {
    crate::batch::validate_name("aggregation", aggregation).map_err(|e| anyhow::anyhow!(e))?;
    let part = |index: ServerIndex| {
        let server = &portal.servers[usize::from(index.number())];
        let id = SumPartId {
            instance: server.instance.clone(),
            aggregation: aggregation.to_string(),
            window: *window,
            run,
            server: index,
        };
        read_sum_part(server, &id)
    };
    let p0 = part(ServerIndex::Zero)?;
    let p1 = part(ServerIndex::One)?;
    check_agreement(&p0, &p1)?;
    let histogram = combine(&p0.record.sum, &p1.record.sum)
        .with_context(|| format!("combining {} and {}", p0.object, p1.object))?;
    let valid_clients = p0.binding.as_ref().or(p1.binding.as_ref());
    let valid_clients = valid_clients.map(|b| b.valid_clients);
    check_possible(
        &histogram,
        p0.record.total_individual_clients,
        valid_clients,
    )
    .map_err(|reason| {
        anyhow::anyhow!(
            "sum parts {} and {} combine to an impossible result: {reason}",
            p0.object,
            p1.object
        )
    })?;
    let result = CollectResult {
        aggregation: aggregation.to_string(),
        window: run_name(window, run),
        bins: p0.record.bins,
        epsilon: p0.record.epsilon,
        total_individual_clients: p0.record.total_individual_clients,
        valid_clients,
        invalid_packets: p0.invalid.len(),
        batches: p0.record.batch_uuids.clone(),
        histogram,
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
        result_csv(&result).as_bytes(),
    )?;
    Ok(result)
}

/// Every ENPA measurement is a 0/1 vector, so no bin can count more clients than were
/// counted, and no count of clients is negative. A result that breaks this comes from
/// parts that are not what they claim, and is not published.
fn check_possible(
    histogram: &[u64],
    total_clients: i64,
    valid_clients: Option<u64>,
) -> std::result::Result<(), String> {
    let total = u64::try_from(total_clients)
        .map_err(|_| format!("total_individual_clients is {total_clients}"))?;
    let counted = match valid_clients {
        Some(valid) if valid > total => {
            return Err(format!(
                "{valid} valid clients, more than total_individual_clients {total}"
            ))
        }
        Some(valid) => valid,
        None => total,
    };
    match histogram.iter().enumerate().find(|(_, &c)| c > counted) {
        Some((bin, count)) => Err(format!(
            "bin {bin} counts {count}, more than the {counted} clients counted"
        )),
        None => Ok(()),
    }
}

pub fn result_csv(result: &CollectResult) -> String {
    let mut csv = String::from("bin,count\n");
    for (i, c) in result.histogram.iter().enumerate() {
        csv.push_str(&format!("{i},{c}\n"));
    }
    csv
}

/// How a collection reads its result.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectOptions {
    /// A DP task's noisy values below zero are shown as 0 (else as they are). The
    /// result says so.
    pub clamp_negative: bool,
}

/// What a collection gave: an ENPA histogram, or a DAP task's VDAF result.
#[derive(Debug, Clone)]
pub enum Collected {
    Enpa(CollectResult),
    Dap(super::collect_dap::DapCollectResult),
}

/// Collects one run of a window, of whichever task kind its sum parts are: server 0's
/// part's header record says (a part not readable yet takes the ENPA path, which waits
/// for it or names what is wrong).
pub fn collect_any(
    portal: &Portal,
    aggregation: &str,
    window: &Window,
    run: u32,
    options: CollectOptions,
) -> Result<Collected> {
    crate::batch::validate_name("aggregation", aggregation).map_err(|e| anyhow::anyhow!(e))?;
    let server = &portal.servers[0];
    let id = SumPartId {
        instance: server.instance.clone(),
        aggregation: aggregation.to_string(),
        window: *window,
        run,
        server: ServerIndex::Zero,
    };
    let record = crate::batch::peek_record_name(
        server.sum_parts.as_ref(),
        &id.names().header,
        crate::batch::MAX_HEADER_BYTES,
    )?;
    match record.as_deref() {
        Some(<crate::wire::DapSumPart as crate::wire::Record>::NAME) => Ok(Collected::Dap(
            super::collect_dap::collect_dap(portal, aggregation, window, run, options)?,
        )),
        _ => Ok(Collected::Enpa(collect_run(
            portal,
            aggregation,
            window,
            run,
        )?)),
    }
}
