//! `divvi passes` (server): the heavy-hitters work of a Poplar1 task the portal asked
//! for: both rounds of its latest pass over a window's batches and the pass's sum part,
//! as far as the peer's shares allow now. Run it at every turn on both servers; each
//! run picks up where the last stopped.

use super::outcome::{config, Ended};
use super::window;
use anyhow::Result;
use clap::Args;
use divvi::config::Server;
use divvi::stages::heavy;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct PassesArgs {
    /// The server's config (server0.toml or server1.toml, as keygen writes them).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// First minute of the window (YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339).
    #[arg(long, required_unless_present = "pending", requires = "end")]
    start: Option<String>,
    /// Last minute of the window, included.
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// Every window whose traversal the portal has begun and whose latest pass this
    /// server has not finished (for scheduled runs).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pending: bool,
    /// Allow a window longer than 31 days.
    #[arg(long)]
    force: bool,
    /// This worker's part of each pass, i/N: both rounds of the batches it owns (the same
    /// split as intake's); worker 0 also writes the sum part once every batch's rounds are
    /// in (default: from Kubernetes JOB_COMPLETION_INDEX and DIVVI_SHARD_COUNT, else all).
    #[arg(long)]
    shard: Option<String>,
    /// How the result is printed: a JSON object per line, CSV, or a table.
    #[arg(long, default_value = "json")]
    output: super::output::Output,
}

pub(super) fn passes_command(a: PassesArgs) -> Result<Ended> {
    let server = config(Server::load(&a.config))?;
    divvi::stages::remove_stale_temporaries(&server.written_locations());
    let windows = match (&a.start, &a.end) {
        (Some(start), Some(end)) => vec![window(start, end, a.force)?],
        // Only traversals whose latest pass this server has not finished: a finished
        // one waits for the portal, and there is nothing to read for it.
        _ => divvi::batch::unanswered_traversal_windows(
            server.sum_parts.as_ref(),
            &server.instance,
            &a.aggregation,
            server.index,
        )?,
    };
    if windows.is_empty() {
        // Nothing begun or nothing unanswered (or not a Poplar1 server, for which
        // nothing ever begins).
        let none = serde_json::json!({"aggregation": a.aggregation, "traversals": 0});
        super::output::print_one(a.output, &none)?;
        return Ok(Ended::NothingToDo);
    }
    config(heavy::check_server(&server))?;
    let shard = match &a.shard {
        Some(text) => divvi::batch::Shard::parse(text)?,
        None => divvi::batch::Shard::from_env()?.unwrap_or(divvi::batch::Shard::ALL),
    };
    let (mut worked, mut waiting) = (false, false);
    let mut printer = super::output::Printer::new(a.output);
    for window in &windows {
        let progress = heavy::advance(
            &server,
            &a.aggregation,
            window,
            shard,
            &divvi::stages::no_tick,
        )?;
        printer.record(&progress)?;
        worked |= !progress.round_one.is_empty()
            || !progress.round_two.is_empty()
            || progress.sum_part.is_some();
        // A finished pass waits for the portal, not for work of this server.
        waiting |= !progress.done && !progress.waiting.is_empty();
        waiting |= progress.pass.is_none();
    }
    printer.finish();
    Ok(match (worked, waiting) {
        (true, _) => Ended::Done,
        (false, true) => Ended::Waiting,
        (false, false) => Ended::NothingToDo,
    })
}
