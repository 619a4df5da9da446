//! `divvi collect` (portal): combine both sum parts of a window (or of every run not
//! collected yet) into results, add them to their series, and print them.

use super::outcome::{config, Ended, ExitCodes};
use super::output::Output;
use super::window;
use anyhow::{bail, Result};
use clap::Args;
use divvi::config::Portal;
use divvi::schedule::RunId;
use divvi::stages::collect;
use divvi::stages::series::{self, SeriesRow};
use std::path::PathBuf;
use std::process::ExitCode;

/// The portal's config, an aggregation, a window and which of its runs; or every run
/// both servers finished that was not collected yet.
#[derive(Args)]
pub(super) struct CollectArgs {
    /// The portal's config (portal.toml, as keygen writes it).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation name (a DAP task id in base64url may start with "-"); with
    /// --pending, optional: every aggregation the servers wrote sum parts for.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "pending")]
    aggregation: Option<String>,
    /// First minute of the window (YYYYmmddHHMM, YYYY/mm/dd/HH/MM or RFC 3339).
    #[arg(long, required_unless_present = "pending", requires = "end")]
    start: Option<String>,
    /// Last minute of the window, included.
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// Which run of the window: 0 is the regular run, k >= 1 its k-th late run.
    #[arg(long, default_value_t = 0, conflicts_with = "pending")]
    run: u32,
    /// Every run (window and late run) that both servers have summed and that is not in
    /// its aggregation's series yet (for scheduled runs). Each is written as a result and
    /// added to `{aggregation}/series.jsonl|csv` in the results location.
    #[arg(long, conflicts_with_all = ["start", "end", "heavy_hitters"])]
    pending: bool,
    /// Allow a window longer than 31 days (a longer one is most likely a mistyped date).
    #[arg(long)]
    force: bool,
    /// How each result is printed: its facts and a value per line (table), its series
    /// rows (csv: one value a line), or its series row as a JSON line (json).
    #[arg(long, default_value = "table")]
    output: Output,
    /// A DP task's noisy values below zero are shown (and written) as 0. Without it they
    /// are reported as they are: clamping biases sums upwards.
    #[arg(long)]
    clamp: bool,
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

impl CollectArgs {
    fn collect_options(&self) -> collect::CollectOptions {
        collect::CollectOptions {
            clamp_negative: self.clamp,
        }
    }
}

pub fn collect_command(a: CollectArgs, exit_codes: ExitCodes) -> Result<ExitCode> {
    let portal = config(Portal::load(&a.config))?;
    divvi::stages::remove_stale_temporaries(&[portal.results.as_ref()]);
    if a.pending {
        return collect_pending(&portal, &a, exit_codes);
    }
    let (Some(aggregation), Some(start), Some(end)) = (&a.aggregation, &a.start, &a.end) else {
        bail!("--aggregation, --start and --end are required without --pending");
    };
    let window = window(start, end, a.force)?;
    if a.heavy_hitters {
        return heavy_hitters(&portal, aggregation, &a, &window, exit_codes);
    }
    let run = RunId::new(aggregation, window, a.run)?;
    let mut printer = ResultPrinter::new(a.output);
    let mut waiting = None;
    let options = a.collect_options();
    series::collect_runs(
        &portal,
        std::slice::from_ref(&run),
        options,
        |_, collected| {
            match collected {
                Ok((collected, row)) => printer.print(&collected, row),
                Err(e) if e.is::<collect::SumPartNotYetWritten>() => waiting = Some(e),
                Err(e) => return Err(e),
            }
            Ok(())
        },
    )?;
    if let Some(e) = waiting {
        eprintln!("waiting: {e:#}");
        return Ok(Ended::Waiting.exit_code(exit_codes));
    }
    Ok(ExitCode::SUCCESS)
}

/// `collect --pending`: every run both servers finished and not collected; one that
/// fails is named and the others still collected (the command then exits 1).
fn collect_pending(portal: &Portal, a: &CollectArgs, exit_codes: ExitCodes) -> Result<ExitCode> {
    let runs = divvi::schedule::collectable_runs(portal, a.aggregation.as_deref())?;
    let mut printer = ResultPrinter::new(a.output);
    let (mut collected, mut failed) = (0, 0);
    series::collect_runs(portal, &runs, a.collect_options(), |run, result| {
        match result {
            Ok((result, row)) => {
                collected += 1;
                printer.print(&result, row);
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "error: collecting {}/{}: {e:#}",
                    run.aggregation,
                    run.name()
                );
            }
        }
        Ok(())
    })?;
    let ended = match (failed, collected) {
        (0, 0) => Ended::NothingToDo,
        (0, _) => Ended::Done,
        _ => Ended::Failed,
    };
    let summary = serde_json::json!({
        "runs": runs.len(), "collected": collected, "failed": failed, "outcome": ended.name()
    });
    eprintln!("{summary}");
    Ok(ended.exit_code(exit_codes))
}

/// Prints collected results in the chosen form; CSV's header comes once.
struct ResultPrinter {
    output: Output,
    header_printed: bool,
}

impl ResultPrinter {
    fn new(output: Output) -> Self {
        ResultPrinter {
            output,
            header_printed: false,
        }
    }

    fn print(&mut self, collected: &collect::Collected, row: &SeriesRow) {
        match self.output {
            Output::Json => out!("{}", serde_json::json!(row)),
            Output::Csv => {
                if !std::mem::replace(&mut self.header_printed, true) {
                    out!("{}", series::SERIES_CSV_HEADER);
                }
                super::emit(&series::series_csv_lines(row));
            }
            Output::Table => match collected {
                collect::Collected::Enpa(result) => print_enpa(result),
                collect::Collected::Dap(result) => print_dap(result),
            },
        }
    }
}

/// An ENPA result: one line of facts, then a count per bin.
fn print_enpa(result: &collect::CollectResult) {
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
    if let Some(noise) = &result.noise {
        let clamped = match result.clamped {
            true => "; values below zero shown as 0",
            false => "",
        };
        out!("noise: {noise}{clamped}");
    }
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
    aggregation: &str,
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
        let progress = advance(portal, aggregation, window, settings)?;
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
