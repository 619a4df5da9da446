//! Aggregate: for a window, join each ingestion batch with this server's own validation
//! and the peer's, decide validity from the two verifier shares, and add the valid packets'
//! output shares. It reads its own validation instead of verifying proofs again, and takes
//! output shares from the stash intake kept; only without a stash (no stash key, or
//! batches validated elsewhere) does it open packets again.

use super::checks::check_validity_header;
use super::{judge_in_chunks, open_ingestion_batch, open_packet, Rejected, Tick};
use crate::batch::{
    open_batch, write_sum_part, BatchId, BatchKind, SumPartBinding, SumPartId, Window,
};
use crate::config::Server;
use crate::ids::RunId;
use crate::stash::{StashContext, StashReader, StashRecord};
use crate::vdaf::{is_valid, Accumulator, Prio2Bins, VerifierShare};
use crate::wire::{DataSharePacket, IngestionHeader, SumPart, ValidityHeader, ValidityPacket};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct AggregateReport {
    pub sum_part: String,
    pub batches: Vec<String>,
    pub packets: u64,
    pub valid: u64,
    /// Packets judged by their proof, valid or not: the sum part's
    /// `total_individual_clients`, counted as the original aggregator counts it.
    pub judged: u64,
    pub invalid: Vec<Rejected>,
    pub sum: Vec<u32>,
    /// UUIDs of the packets counted (the run's contribution to the replay check).
    #[serde(skip)]
    pub counted: Vec<Uuid>,
}

/// A run with fewer valid clients than the server's floor: nothing was written, so
/// nothing was revealed, and the run may be decided again with more batches.
#[derive(Debug, thiserror::Error)]
#[error("{run}: {valid} valid clients, fewer than the minimum of {min} (limits.min_clients): no sum part written")]
pub struct TooFewClients {
    pub run: String,
    pub valid: u64,
    pub min: u64,
}

/// Ingestion batches of an aggregation inside a window, in time then UUID order.
pub fn batches_in_window(
    server: &Server,
    aggregation: &str,
    window: &Window,
) -> Result<Vec<BatchId>> {
    let mut ids = super::ingestion_batches(server, aggregation)?;
    ids.retain(|id| window.contains(id.time));
    Ok(ids)
}

/// Reads a validation batch into a map from packet UUID to verifier share.
fn read_validation(
    store: &dyn crate::store::ObjectStore,
    id: &BatchId,
    from: crate::ids::ServerIndex,
    trust: &crate::crypto::TrustSet,
    ingestion: &IngestionHeader,
    max_bytes: u64,
) -> Result<HashMap<Uuid, Result<VerifierShare, String>>> {
    let names = id.names(BatchKind::Validation(from));
    let object = store.describe(&names.signature);
    let batch = open_batch::<ValidityHeader>(store, &names, trust, max_bytes)
        .with_context(|| format!("validation of {id} by server {from}"))?;
    check_validity_header(ingestion, &batch.header, &object)?;
    let mut map = HashMap::new();
    for packet in batch.packets::<ValidityPacket>()? {
        let p = packet?;
        let share = VerifierShare::from_longs(p.f_r, p.g_r, p.h_r).map_err(|e| e.to_string());
        if map.insert(p.uuid, share).is_some() {
            // A validation listing a packet twice is not trusted for that packet.
            map.insert(p.uuid, Err(format!("listed twice in {object}")));
        }
    }
    Ok(map)
}

/// Verifier shares of a batch's packets, by UUID (Err: listed but unusable).
type Validations = HashMap<Uuid, Result<VerifierShare, String>>;

/// What happened to one packet in aggregate.
enum Outcome {
    Valid(crate::vdaf::OutputShare),
    Invalid {
        reason: String,
        /// Both verifier shares were there, so the packet was judged (and failed): the
        /// original aggregator counts such a packet in `total_individual_clients`.
        judged: bool,
    },
}

impl Outcome {
    fn invalid(reason: impl Into<String>, judged: bool) -> Self {
        Outcome::Invalid {
            reason: reason.into(),
            judged,
        }
    }

    /// Ok(share) goes into the sum; an error after both verifier shares were found is a
    /// judged packet.
    fn judged(share: Result<crate::vdaf::OutputShare, String>) -> Self {
        match share {
            Ok(s) => Outcome::Valid(s),
            Err(reason) => Outcome::invalid(reason, true),
        }
    }
}

/// Ok if both servers' verifier shares of the packet exist and its proof checks out.
/// Err(outcome) otherwise: not judged when a verifier share is missing or unusable.
fn decide(uuid: &Uuid, own: &Validations, peer: &Validations) -> Result<(), Outcome> {
    let lookup = |map: &Validations, whose: &str| match map.get(uuid) {
        None => Err(Outcome::invalid(format!("no {whose} validation"), false)),
        Some(Err(e)) => Err(Outcome::invalid(format!("{whose} validation: {e}"), false)),
        Some(Ok(v)) => Ok(*v),
    };
    let mine = lookup(own, "own")?;
    let theirs = lookup(peer, "peer")?;
    if is_valid(&mine, &theirs) {
        Ok(())
    } else {
        Err(Outcome::invalid("proof check failed", true))
    }
}

/// Without a stash: the output share comes from opening the packet again. Its verifier
/// share is computed again too and must be the one intake recorded: a packet file
/// re-signed since intake (same UUIDs, other payloads) is not summed under old verdicts.
fn judge_packet(
    server: &Server,
    prio: &Prio2Bins,
    packet: &DataSharePacket,
    own: &Validations,
    peer: &Validations,
) -> Outcome {
    if let Err(outcome) = decide(&packet.uuid, own, peer) {
        return outcome;
    }
    Outcome::judged((|| {
        let plaintext = open_packet(&server.packet_keys, packet)?;
        let now = prio
            .verifier_share(server.index, &plaintext, packet.r_pit)
            .map_err(|e| e.to_string())?;
        if own.get(&packet.uuid) != Some(&Ok(now)) {
            return Err("packet differs from the one validated at intake".into());
        }
        prio.output_share(server.index, &plaintext)
            .map_err(|e| e.to_string())
    })())
}

/// With a stash: the output share comes from the bytes intake kept.
fn judge_kept(
    server: &Server,
    prio: &Prio2Bins,
    record: &StashRecord,
    own: &Validations,
    peer: &Validations,
) -> Outcome {
    let Some(kept) = &record.share else {
        return Outcome::invalid("left out at intake (no own validation)", false);
    };
    if let Err(outcome) = decide(&record.uuid, own, peer) {
        return outcome;
    }
    Outcome::judged(
        prio.output_share_from_kept(server.index, kept)
            .map_err(|e| e.to_string()),
    )
}

/// The sum of one batch, kept apart until its packet file's digest has been checked.
struct BatchSum {
    acc: Accumulator,
    packets: u64,
    /// Packets judged by their proof, valid or not (the original's client count).
    judged: u64,
    invalid: Vec<Rejected>,
    counted: Vec<Uuid>,
    /// Every packet UUID of the batch, to find validations listing packets it lacks.
    uuids: HashSet<Uuid>,
}

/// Packet UUIDs a run must not count: those of earlier runs of the aggregation (kept by
/// the server), and those already met in this run.
struct Seen<'a> {
    before: &'a HashSet<Uuid>,
    this_run: HashSet<Uuid>,
}

impl BatchSum {
    /// Counts one packet; a UUID counted in an earlier run (a replay) or seen before in
    /// this run is refused whatever its proof.
    fn account(&mut self, seen: &mut Seen, uuid: Uuid, outcome: Outcome) -> Result<()> {
        self.packets += 1;
        self.uuids.insert(uuid);
        let outcome = if seen.before.contains(&uuid) {
            Outcome::invalid(
                "replayed: counted in an earlier run of this aggregation",
                false,
            )
        } else if !seen.this_run.insert(uuid) {
            Outcome::invalid("packet uuid already seen in this run", false)
        } else {
            outcome
        };
        match outcome {
            Outcome::Valid(share) => {
                self.acc.add(&share)?;
                self.counted.push(uuid);
                self.judged += 1;
            }
            Outcome::Invalid { reason, judged } => {
                self.judged += u64::from(judged);
                self.invalid.push(Rejected { uuid, reason });
            }
        }
        Ok(())
    }
}

fn sum_batch(
    server: &Server,
    id: &BatchId,
    first_header: &mut Option<IngestionHeader>,
    seen: &mut Seen,
    tick: Tick,
) -> Result<BatchSum> {
    let (batch, prio, object) = open_ingestion_batch(server, id)?;
    match first_header {
        Some(first) => {
            let (mine, run) = (batch.header.parameters(), first.parameters());
            if mine != run {
                bail!("{object}: {mine} differ from the run's first batch ({run})");
            }
        }
        None => *first_header = Some(batch.header.clone()),
    }
    let own = read_validation(
        server.own.as_ref(),
        id,
        server.index,
        &server.own_trust,
        &batch.header,
        server.limits.max_object_bytes,
    )?;
    let peer = read_validation(
        server.peer_inbox.as_ref(),
        id,
        server.index.peer(),
        &server.peer_trust,
        &batch.header,
        server.limits.max_object_bytes,
    )?;

    let mut sum = BatchSum {
        acc: Accumulator::new(prio.bins()),
        packets: 0,
        judged: 0,
        invalid: Vec::new(),
        counted: Vec::new(),
        uuids: HashSet::new(),
    };
    match open_stash(server, id, &prio, &batch.header)? {
        Some(mut stash) => {
            while let Some(records) = stash.next_frame()? {
                let outcomes: Vec<Outcome> = records
                    .par_iter()
                    .map(|r| judge_kept(server, &prio, r, &own, &peer))
                    .collect();
                for (record, outcome) in records.iter().zip(outcomes) {
                    sum.account(seen, record.uuid, outcome)?;
                }
                tick(records.len() as u64);
            }
        }
        None => {
            let mut packets = batch.packets::<DataSharePacket>()?;
            judge_in_chunks(
                &mut packets,
                |p| judge_packet(server, &prio, p, &own, &peer),
                |packet, outcome| sum.account(seen, packet.uuid, outcome),
                tick,
            )?;
        }
    }
    for (map, from, store) in [
        (&own, server.index, server.own.as_ref()),
        (&peer, server.index.peer(), server.peer_inbox.as_ref()),
    ] {
        let extra: Vec<&Uuid> = map.keys().filter(|u| !sum.uuids.contains(u)).collect();
        if let Some(first) = extra.first() {
            bail!(
                "{}: lists {} packet(s) the ingestion batch does not hold, e.g. {first}",
                store.describe(&id.names(BatchKind::Validation(from)).signature),
                extra.len()
            );
        }
    }
    Ok(sum)
}

/// This server's share stash of a batch, if it has a stash key and intake kept one.
fn open_stash(
    server: &Server,
    id: &BatchId,
    prio: &Prio2Bins,
    header: &IngestionHeader,
) -> Result<Option<StashReader>> {
    let Some(key) = &server.stash_key else {
        return Ok(None);
    };
    let name = id.stash_name(server.index);
    if server.own.head(&name)?.is_none() {
        return Ok(None);
    }
    let context = StashContext::for_batch(id, server.index, prio.bins(), header);
    Ok(Some(StashReader::open(
        server.own.as_ref(),
        &name,
        key,
        &context,
    )?))
}

/// Aggregates every batch of a window, as its regular run, without asking server 0 which
/// batches to sum (for a single operator and for checks; scheduled jobs use `runs`).
pub fn aggregate(
    server: &Server,
    aggregation: &str,
    window: &Window,
    tick: Tick,
) -> Result<AggregateReport> {
    let ids = batches_in_window(server, aggregation, window)?;
    let run = RunId::new(aggregation, *window, 0)?;
    aggregate_batches(server, &run, &ids, &HashSet::new(), tick)
}

/// Sums the given batches of a run and writes the signed sum part and the invalid-UUID
/// file. Every batch needs both validations: a missing one fails the run, naming it.
/// Packets in `counted_before` (earlier runs) are refused as replays. With fewer valid
/// clients than the server's `min_clients`, nothing is written and the run fails.
pub fn aggregate_batches(
    server: &Server,
    run: &RunId,
    ids: &[BatchId],
    counted_before: &HashSet<Uuid>,
    tick: Tick,
) -> Result<AggregateReport> {
    let (aggregation, window) = (&run.aggregation, &run.window);
    if ids.is_empty() {
        bail!(
            "no ingestion batches of {aggregation} in window {}",
            window.name()
        );
    }
    let mut first: Option<IngestionHeader> = None;
    let mut seen = Seen {
        before: counted_before,
        this_run: HashSet::new(),
    };
    let mut counted = Vec::new();
    let mut total: Option<Accumulator> = None;
    let mut packets = 0;
    let mut judged = 0;
    let mut invalid = Vec::new();
    for id in ids {
        let s = sum_batch(server, id, &mut first, &mut seen, tick)
            .with_context(|| format!("aggregating batch {id}"))?;
        packets += s.packets;
        judged += s.judged;
        invalid.extend(s.invalid);
        counted.extend(s.counted);
        match &mut total {
            Some(t) => t.merge(&s.acc)?,
            None => total = Some(s.acc),
        }
    }
    let (Some(header), Some(total)) = (first, total) else {
        bail!("no batches were summed");
    };
    for r in &invalid {
        tracing::info!(packet = %r.uuid, reason = %r.reason, "invalid packet");
    }
    let min = server.limits.min_clients;
    if total.count() < min {
        return Err(TooFewClients {
            run: run.to_string(),
            valid: total.count(),
            min,
        }
        .into());
    }

    let part = SumPartId {
        instance: server.instance.clone(),
        aggregation: aggregation.to_string(),
        window: *window,
        run: run.run,
        server: server.index,
    };
    let sum = total.sum();
    let record = SumPart {
        batch_uuids: ids.iter().map(|id| id.uuid).collect(),
        name: header.name.clone(),
        bins: header.bins,
        epsilon: header.epsilon,
        prime: header.prime,
        number_of_servers: header.number_of_servers,
        hamming_weight: header.hamming_weight,
        sum: sum.iter().map(|&v| i64::from(v)).collect(),
        aggregation_start_time: window.start.timestamp_millis(),
        aggregation_end_time: window.end.timestamp_millis(),
        packet_file_digest: Vec::new(), // set by write_sum_part
        total_individual_clients: i64::try_from(judged)?,
    };
    let binding = SumPartBinding {
        instance: server.instance.clone(),
        run: run.run,
        server: server.index,
        valid_clients: total.count(),
    };
    let invalid_uuids: Vec<Uuid> = invalid.iter().map(|r| r.uuid).collect();
    let sum_part = write_sum_part(
        server.sum_parts.as_ref(),
        &part,
        record,
        &binding,
        &invalid_uuids,
        &server.signing_key,
    )?;
    Ok(AggregateReport {
        sum_part,
        batches: ids.iter().map(|id| id.to_string()).collect(),
        packets,
        valid: total.count(),
        judged,
        invalid,
        sum,
        counted,
    })
}
