//! `divvi collect` (portal): combine both sum parts of a window and print the result.

use super::outcome::{config, Ended, ExitCodes};
use super::window;
use anyhow::Result;
use clap::Args;
use divvi::config::Portal;
use divvi::stages::collect;
use std::path::PathBuf;
use std::process::ExitCode;

/// The portal's config, an aggregation, a window and which of its runs.
#[derive(Args)]
pub(super) struct CollectArgs {
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-").
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// First minute of the window (YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339).
    #[arg(long)]
    start: String,
    /// Last minute of the window, included.
    #[arg(long)]
    end: String,
    /// Which run of the window: 0 is the regular run, k >= 1 its k-th late run.
    #[arg(long, default_value_t = 0)]
    run: u32,
    /// Allow a window longer than 31 days (a longer one is most likely a mistyped date).
    #[arg(long)]
    force: bool,
}

pub fn collect_command(a: CollectArgs, exit_codes: ExitCodes) -> Result<ExitCode> {
    let portal = config(Portal::load(&a.config))?;
    divvi::stages::remove_stale_temporaries(&[portal.results.as_ref()]);
    let window = window(&a.start, &a.end, a.force)?;
    let result = match collect::collect_any(&portal, &a.aggregation, &window, a.run) {
        Err(e) if e.is::<collect::SumPartNotYetWritten>() => {
            eprintln!("waiting: {e:#}");
            return Ok(Ended::Waiting.exit_code(exit_codes));
        }
        Ok(collect::Collected::Dap(result)) => {
            print_dap(&result);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(collect::Collected::Enpa(result)) => result,
        Err(e) => return Err(e),
    };
    let valid = (result.valid_clients).map_or("unknown".into(), |v| v.to_string());
    out!(
        "aggregation {}  window {}  valid clients {valid}  judged (total_individual_clients) {}  invalid packets {}",
        result.aggregation,
        result.window,
        result.total_individual_clients,
        result.invalid_packets
    );
    out!("{:>6}  {:>12}", "bin", "count");
    for (i, c) in result.histogram.iter().enumerate() {
        out!("{i:>6}  {c:>12}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A DAP task's result: one line of facts, then the VDAF's values as a table.
fn print_dap(result: &divvi::stages::collect_dap::DapCollectResult) {
    out!(
        "aggregation {}  window {}  task {} ({})  reports {}  invalid reports {}",
        result.aggregation,
        result.window,
        result.task_id,
        result.vdaf,
        result.report_count,
        result.invalid_reports
    );
    let rows = divvi::stages::collect_dap::dap_result_rows(result);
    let label = if result.result.is_array() {
        "bucket"
    } else {
        ""
    };
    out!("{label:>8}  {:>12}", "value");
    for (label, value) in rows {
        out!("{label:>8}  {value:>12}");
    }
}
