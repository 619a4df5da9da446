//! Heavy hitters, one server's side: the Poplar1 pass the portal's latest signed query
//! asks for, run over the window's ingestion batches in three steps, each written once
//! and found again by a rerun, so a killed job loses nothing:
//!
//! 1. **round one** (per batch): record the pass in the [`PassLedger`] (which refuses a
//!    pass the VDAF does not allow after the recorded ones), open each report, evaluate
//!    it at the pass's prefixes; keep the state sealed in the server's own storage and
//!    send the first verifier shares to the peer (signed, own copy + peer inbox);
//! 2. **round two** (per batch, once the peer's round one arrived): join both first
//!    shares, keep the new state sealed, send the second verifier shares;
//! 3. **finish** (once both servers' round two of every batch are there): decide each
//!    report from both second shares, sum the valid reports' counts per prefix, and write
//!    the pass's sum part, sealed to the collector; the pass's round states are then
//!    given up (deleted from a folder; in S3 a lifecycle rule on `rounds/` expires them).
//!
//! Pass 0 takes the window's batches and refuses replayed reports (as Prio3's intake
//! does); every later pass takes exactly the batches the previous pass summed and leaves
//! out the reports it found invalid, so a report refused once stays refused.

mod finish;
mod rounds;

use super::judges::TIME_LEN;
use super::pass_ledger::PassLedger;
use super::Tick;
use crate::batch::{
    read_pass_query, read_pass_sum_part, BatchId, BatchKind, PassId, Shard, Window,
};
use crate::config::{dap::ServerDap, Server};
use crate::crypto::StashKey;
use crate::dap::poplar1::{Pass, Poplar1Aggregator, Poplar1Vdaf};
use crate::ids::ServerIndex;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use uuid::Uuid;

/// Reports a pass leaves out, by batch (as displayed) and report id, with the reason.
pub(crate) type LeftOut = HashMap<(String, Uuid), String>;

pub use finish::SumWritten;
pub use rounds::RoundReport;

/// What one call of [`advance`] did and where the pass stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassProgress {
    pub aggregation: String,
    pub window: String,
    /// The pass the portal asks for; None while it has asked for none.
    pub pass: Option<u32>,
    pub level: Option<usize>,
    pub prefixes: Option<usize>,
    pub batches: usize,
    pub round_one: Vec<RoundReport>,
    pub round_two: Vec<RoundReport>,
    /// This server's sum part of the pass, when this call wrote it.
    pub sum_part: Option<SumWritten>,
    /// Whether this server's sum part of the pass exists (written now or earlier).
    pub done: bool,
    /// What the pass waits for (the peer's rounds, the portal's query).
    pub waiting: Vec<String>,
    /// What this server could do now (only when looked at, not run: `status`).
    pub ready: Vec<String>,
}

/// Whether [`advance`] does the work it finds or only says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Do this worker's part.
    Run(Shard),
    Look,
}

/// One pass of one traversal, as this server runs it.
pub(crate) struct PassRun<'s> {
    server: &'s Server,
    dap: &'s ServerDap,
    stash_key: &'s StashKey,
    verify_key: &'s [u8; 32],
    aggregator: Poplar1Aggregator,
    pass: Pass,
    /// The pass, encoded: bound into every round header and stash.
    pass_bytes: Vec<u8>,
    id: PassId,
    /// Bytes kept per report after round one and two: the time unit, then the state
    /// (`judges::join_kept`).
    kept_lens: [usize; 2],
    task_binding: Vec<u8>,
    /// The tree's last level: a pass there ends the traversal.
    last_level: usize,
}

/// Does the work of the portal's latest pass over `aggregation`'s reports in `window`
/// that this server can do now: both rounds of the batches `shard` owns, and (shard 0
/// only, so no two workers write it) the pass's sum part once every batch's rounds are in.
pub fn advance(
    server: &Server,
    aggregation: &str,
    window: &Window,
    shard: Shard,
    tick: Tick,
) -> Result<PassProgress> {
    progress_of(server, aggregation, window, tick, Mode::Run(shard))
}

/// Where the traversal of `window` stands on this server, nothing done: the latest pass,
/// what this server could do now (`ready`) and what it waits for.
pub fn standing(server: &Server, aggregation: &str, window: &Window) -> Result<PassProgress> {
    progress_of(server, aggregation, window, &super::no_tick, Mode::Look)
}

/// The windows of `aggregation` whose traversal has begun, with where each stands.
pub fn traversals(server: &Server, aggregation: &str) -> Result<Vec<PassProgress>> {
    let windows =
        crate::batch::traversal_windows(server.sum_parts.as_ref(), &server.instance, aggregation)?;
    windows
        .iter()
        .map(|window| standing(server, aggregation, window))
        .collect()
}

fn progress_of(
    server: &Server,
    aggregation: &str,
    window: &Window,
    tick: Tick,
    mode: Mode,
) -> Result<PassProgress> {
    crate::batch::validate_name("aggregation", aggregation).map_err(anyhow::Error::msg)?;
    let mut progress = PassProgress {
        aggregation: aggregation.to_string(),
        window: window.name(),
        pass: None,
        level: None,
        prefixes: None,
        batches: 0,
        round_one: Vec::new(),
        round_two: Vec::new(),
        sum_part: None,
        done: false,
        waiting: Vec::new(),
        ready: Vec::new(),
    };
    let Some(run) = PassRun::latest(server, aggregation, window)? else {
        progress
            .waiting
            .push("the portal's first query (divvi collect --heavy-hitters)".into());
        return Ok(progress);
    };
    progress.pass = Some(run.id.index);
    progress.level = Some(run.pass.level());
    progress.prefixes = Some(run.pass.len());
    let (batches, left_out) = run.batches_and_left_out()?;
    progress.batches = batches.len();
    // Worker 0 gives up round states once their pass's sum part exists: right after
    // writing it, and again at later runs (of this pass, or of the next, whose batches
    // are the ones this pass summed) for a run killed in between.
    let discards = matches!(mode, Mode::Run(shard) if shard.index == 0);
    if discards && run.id.index > 0 {
        run.discard_round_states(&batches, run.id.index - 1);
    }
    if run.own_sum_part_exists()? {
        progress.done = true;
        if discards {
            run.discard_round_states(&batches, run.id.index);
        }
        // After the last level the traversal is over: nothing more will be asked.
        if run.pass.level() < run.last_level {
            progress
                .waiting
                .push(format!("the portal's query after pass {}", run.id.index));
        }
        return Ok(progress);
    }
    let peer = server.index.peer();
    let mut all_exchanged = true;
    let look = mode == Mode::Look;
    let shard = match mode {
        Mode::Run(shard) => shard,
        Mode::Look => Shard::ALL,
    };
    for id in &batches {
        if !shard.owns(id) {
            // Another worker's batch: only whether both servers' rounds are in.
            for (store, from) in [
                (server.own.as_ref(), server.index),
                (server.peer_inbox.as_ref(), peer),
            ] {
                if !run.round_written(store, id, from, 2)? {
                    progress.waiting.push(format!(
                        "server {from}'s round two of {id} (shard {})",
                        shard_of(id, shard)
                    ));
                    all_exchanged = false;
                }
            }
            continue;
        }
        if !run.round_written(server.own.as_ref(), id, server.index, 1)? {
            if look {
                progress.ready.push(format!("round one of {id}"));
                all_exchanged = false;
                continue;
            }
            progress.round_one.push(run.round_one(id, &left_out, tick)?);
        }
        if !run.round_written(server.own.as_ref(), id, server.index, 2)? {
            if run.round_written(server.peer_inbox.as_ref(), id, peer, 1)? {
                if look {
                    progress.ready.push(format!("round two of {id}"));
                    all_exchanged = false;
                    continue;
                }
                progress.round_two.push(run.round_two(id, tick)?);
            } else {
                progress
                    .waiting
                    .push(format!("server {peer}'s round one of {id}"));
                all_exchanged = false;
                continue;
            }
        }
        if !run.round_written(server.peer_inbox.as_ref(), id, peer, 2)? {
            progress
                .waiting
                .push(format!("server {peer}'s round two of {id}"));
            all_exchanged = false;
        }
    }
    if all_exchanged && look {
        progress
            .ready
            .push(format!("the sum part of pass {}", run.id.index));
    } else if all_exchanged && shard.index == 0 {
        progress.sum_part = Some(run.finish(&batches, &left_out, tick)?);
        progress.done = true;
        run.discard_round_states(&batches, run.id.index);
    } else if all_exchanged {
        progress.waiting.push(format!(
            "shard 0/{} to write the sum part of pass {}",
            shard.count, run.id.index
        ));
    }
    Ok(progress)
}

/// The shard of `shard.count` that owns `id`, as `i/N`.
fn shard_of(id: &BatchId, shard: Shard) -> String {
    let index = (id.uuid.as_u128() % u128::from(shard.count)) as u32;
    Shard { index, ..shard }.to_string()
}

impl<'s> PassRun<'s> {
    /// The latest pass the portal asked for, ready to run; None if it asked for none.
    fn latest(server: &'s Server, aggregation: &str, window: &Window) -> Result<Option<Self>> {
        let (dap, poplar, stash_key) = heavy_hitters_server(server)?;
        let id = |index| PassId {
            instance: server.instance.clone(),
            aggregation: aggregation.to_string(),
            window: *window,
            index,
        };
        let mut latest = None;
        for index in 0u32.. {
            match read_pass_query(server.sum_parts.as_ref(), &id(index), &server.portal_trust)? {
                Some(query) => latest = Some((index, query)),
                None => break,
            }
        }
        let Some((index, query)) = latest else {
            return Ok(None);
        };
        let object = server.sum_parts.describe(&id(index).query_name());
        if query.task_id != dap.task.task_id().0 {
            bail!("{object}: a query of another task than this server's (dap.task)");
        }
        if query.threshold < server.limits.min_clients {
            bail!(
                "{object}: the portal would reveal prefix counts from {} reports, below this server's limits.min_clients of {}",
                query.threshold,
                server.limits.min_clients
            );
        }
        let pass = Pass::decode(&query.pass).map_err(|e| anyhow!("{object}: {e}"))?;
        let aggregator = poplar
            .aggregator(dap.role.agg_id())
            .map_err(|e| anyhow!("dap.task: {e}"))?;
        let [one, two] = aggregator
            .state_lens(&pass)
            .map_err(|e| anyhow!("{object}: {e}"))?;
        let verify_key = <&[u8; 32]>::try_from(dap.verify_key.as_bytes())
            .map_err(|_| anyhow!("dap.verify_key: Poplar1 takes a 32-byte verify key"))?;
        Ok(Some(PassRun {
            server,
            dap,
            stash_key,
            verify_key,
            aggregator,
            pass_bytes: query.pass,
            pass,
            id: id(index),
            kept_lens: [TIME_LEN + one, TIME_LEN + two],
            task_binding: dap.task.aad_task_binding(),
            last_level: poplar.bits() - 1,
        }))
    }

    fn own_sum_part_exists(&self) -> Result<bool> {
        let name = self.id.sum_name(self.server.index);
        Ok(self.server.sum_parts.head(&name)?.is_some())
    }

    /// The batches this pass runs over, and the reports it leaves out with the reason:
    /// pass 0 takes the window's batches; a later pass those the previous pass summed,
    /// without the reports it found invalid.
    fn batches_and_left_out(&self) -> Result<(Vec<BatchId>, LeftOut)> {
        let server = self.server;
        if self.id.index == 0 {
            let batches =
                super::aggregate::batches_in_window(server, &self.id.aggregation, &self.id.window)?;
            return Ok((batches, LeftOut::new()));
        }
        let previous = PassId {
            index: self.id.index - 1,
            ..self.id.clone()
        };
        let part = read_pass_sum_part(
            server.sum_parts.as_ref(),
            &previous,
            server.index,
            &server.own_trust,
        )?
        .ok_or_else(|| {
            anyhow!(
                "{previous}: this server wrote no sum part, yet the portal asks for pass {}",
                self.id.index
            )
        })?;
        let batches = part
            .batches
            .iter()
            .map(|text| {
                BatchId::parse(text)
                    .ok_or_else(|| anyhow!("{previous}: its sum part lists {text:?}, not a batch"))
            })
            .collect::<Result<Vec<_>>>()?;
        let left_out = part
            .invalid
            .into_iter()
            .map(|r| ((r.batch, r.report_id), r.reason))
            .collect();
        Ok((batches, left_out))
    }

    /// Whether `server`'s shares of `round` of this pass over the batch are in `store`.
    fn round_written(
        &self,
        store: &dyn crate::store::ObjectStore,
        id: &BatchId,
        server: ServerIndex,
        round: u8,
    ) -> Result<bool> {
        let names = id.names(self.round_kind(server, round));
        Ok(store
            .head(&names.signature)
            .with_context(|| format!("{id}"))?
            .is_some())
    }

    /// Gives up this server's round states of pass `pass` over `batches`, dead once the
    /// pass's sum part exists (each store by its own rule:
    /// [`crate::store::ObjectStore::discard`]). A failure costs only space, so it is
    /// logged, not raised.
    fn discard_round_states(&self, batches: &[BatchId], pass: u32) {
        let own = self.server.own.as_ref();
        for id in batches {
            for round in [1, 2] {
                let name = id.round_stash_name(self.server.index, pass, round);
                if let Err(e) = own.discard(&name) {
                    tracing::warn!(error = %e, "a round state is left in place");
                }
            }
        }
    }

    fn round_kind(&self, server: ServerIndex, round: u8) -> BatchKind {
        BatchKind::Round {
            server,
            pass: self.id.index,
            round,
        }
    }

    fn ledger(&self) -> PassLedger<'s> {
        PassLedger::of(self.server)
    }
}

/// Refuses a server that cannot run passes (no Poplar1 task, or no stash key): a
/// configuration error, which no rerun mends.
pub fn check_server(server: &Server) -> Result<()> {
    heavy_hitters_server(server).map(|_| ())
}

/// The server's Poplar1 task, its VDAF and the key its states are sealed with.
fn heavy_hitters_server(server: &Server) -> Result<(&ServerDap, Poplar1Vdaf, &StashKey)> {
    let dap = server.dap.as_ref().ok_or_else(|| {
        anyhow!("heavy hitters need a Poplar1 task, and this server's config has no [dap] section")
    })?;
    let poplar = Poplar1Vdaf::new(&dap.task).map_err(|e| anyhow!("dap.task: {e}"))?;
    let stash_key = server.stash_key.as_ref().ok_or_else(|| {
        anyhow!("a Poplar1 pass keeps each report's state sealed between its rounds: configure stash_key")
    })?;
    Ok((dap, poplar, stash_key))
}
