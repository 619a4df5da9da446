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
    /// Heavy hitters (a Poplar1 task): drive the traversal one step (ask the next pass,
    /// or read its sum parts), or to its end with --follow.
    #[arg(long, requires = "threshold")]
    heavy_hitters: bool,
    /// Heavy hitters: keep a prefix (and report a string) seen in at least this many reports.
    #[arg(long)]
    threshold: Option<u64>,
    /// Heavy hitters: levels each pass goes down (1 to 8): fewer passes, more candidates
    /// each; 4 was faster than 2 over 256-bit strings.
    #[arg(long, default_value_t = 4)]
    step: usize,
    /// Heavy hitters: keep going, polling the servers' sum parts, until the traversal ends.
    #[arg(long, requires = "heavy_hitters")]
    follow: bool,
    /// Heavy hitters with --follow: seconds between polls.
    #[arg(long, default_value_t = 10)]
    poll_seconds: u64,
}

pub fn collect_command(a: CollectArgs, exit_codes: ExitCodes) -> Result<ExitCode> {
    let portal = config(Portal::load(&a.config))?;
    divvi::stages::remove_stale_temporaries(&[portal.results.as_ref()]);
    let window = window(&a.start, &a.end, a.force)?;
    if a.heavy_hitters {
        return heavy_hitters(&portal, &a, &window, exit_codes);
    }
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

/// `collect --heavy-hitters`: one step of the traversal, or (--follow) every step until
/// it ends, printing each step as a JSON line and the heavy hitters as a table.
fn heavy_hitters(
    portal: &Portal,
    a: &CollectArgs,
    window: &divvi::batch::Window,
    exit_codes: ExitCodes,
) -> Result<ExitCode> {
    use divvi::stages::collect_heavy::{advance, HeavyProgress, HeavySettings};
    let settings = HeavySettings {
        threshold: a.threshold.unwrap_or_default(),
        step: a.step,
    };
    loop {
        let progress = advance(portal, &a.aggregation, window, settings)?;
        eprintln!("{}", serde_json::to_string(&progress)?);
        match progress {
            HeavyProgress::Done(result) => {
                out!(
                    "aggregation {}  window {}  task {}  reports {}  invalid reports {}  passes {}  threshold {}",
                    result.aggregation,
                    result.window,
                    result.task_id,
                    result.reports,
                    result.invalid_reports,
                    result.passes,
                    result.threshold
                );
                if let Some(noise) = &result.noise {
                    out!("noise: {noise}");
                }
                out!("{:>10}  string", "count");
                for h in &result.heavy_hitters {
                    let shown = h.string.clone().unwrap_or_else(|| format!("0x{}", h.hex));
                    out!("{:>10}  {shown}", h.count);
                }
                return Ok(ExitCode::SUCCESS);
            }
            HeavyProgress::Asked(_) if !a.follow => return Ok(ExitCode::SUCCESS),
            HeavyProgress::Waiting { .. } if !a.follow => {
                return Ok(Ended::Waiting.exit_code(exit_codes))
            }
            HeavyProgress::Asked(_) | HeavyProgress::Waiting { .. } => {
                std::thread::sleep(std::time::Duration::from_secs(a.poll_seconds))
            }
        }
    }
}
