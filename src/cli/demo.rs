//! `divvi demo`: the whole pipeline on local folders, beside the truth.

use super::keygen::LayoutArgs;
use super::progress;
use super::vdaf_args::VdafArgs;
use anyhow::{bail, Result};
use chrono::Utc;
use clap::Args;
use divvi::demo::{resume_demo, run_demo, DemoOptions, DemoReport, DemoVdaf};
use divvi::process::peak_rss;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct DemoArgs {
    /// Folder for keys, configs and buckets (default: a fresh ./divvi-demo/<time>).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Finish the heavy-hitters demo (poplar1) that was stopped in this folder: its
    /// traversal goes on from where it stands, then is compared with the truth.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "dir", "vdaf", "bins", "dap_version", "scheme", "reports", "batch_size", "invalid",
        "threshold", "step",
    ])]
    resume: Option<PathBuf>,
    #[command(flatten)]
    what: VdafArgs,
    /// How many reports the clients make [default: 100000; 5000 for poplar1, whose
    /// passes cost far more per report]
    #[arg(long)]
    reports: Option<usize>,
    /// Reports per ingestion batch.
    #[arg(long, default_value_t = 25_000)]
    batch_size: usize,
    /// How many reports to spoil on purpose, in turn. Prio3: the leader's ciphertext
    /// corrupted, the helper's, a client clock an hour slow, a report sent again in a
    /// later upload. Prio2: not binary, undecryptable, bad r_pit.
    #[arg(long, default_value_t = 6)]
    invalid: usize,
    /// Heavy hitters (poplar1): keep strings seen in at least this many reports
    /// [default: 2% of the reports, at least the servers' min_clients of 100]
    #[arg(long)]
    threshold: Option<u64>,
    /// Heavy hitters (poplar1): levels each pass goes down, 1 to 8 [default: 4]
    #[arg(long)]
    step: Option<usize>,
    #[command(flatten)]
    layout: LayoutArgs,
}

pub(super) fn demo(a: DemoArgs) -> Result<ExitCode> {
    let bars = progress::Bars::default();
    let report = match &a.resume {
        Some(dir) => {
            out!(
                "divvi demo: resuming the heavy-hitters traversal in {}",
                dir.display()
            );
            resume_demo(dir, &bars)?
        }
        None => run(a, &bars)?,
    };
    Ok(print_summary(&report))
}

/// A fresh demo, from keygen to the comparison with the truth.
fn run(a: DemoArgs, bars: &progress::Bars) -> Result<DemoReport> {
    let (vdaf, scheme) = a.what.resolve()?;
    let dir = a.dir.unwrap_or_else(|| {
        PathBuf::from("divvi-demo").join(Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    let options = DemoOptions {
        dir,
        reports: a.reports.unwrap_or(if vdaf.is_heavy_hitters() {
            5_000
        } else {
            100_000
        }),
        vdaf,
        batch_size: a.batch_size,
        invalid: a.invalid,
        scheme,
        layout: a.layout.layout(),
        heavy: divvi::demo::HeavyChoice {
            threshold: a.threshold,
            step: a.step,
        },
    };
    if options.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    let how = match &options.vdaf {
        DemoVdaf::Prio2 { .. } => format!("ENPA, {} packets", options.scheme),
        DemoVdaf::Dap { .. } if options.vdaf.is_heavy_hitters() => {
            "DAP-18 heavy hitters, reports sealed by the client library, passes through the buckets"
                .to_string()
        }
        DemoVdaf::Dap { version, .. } => format!(
            "{}, reports sealed by the client library",
            version.label().to_uppercase()
        ),
    };
    out!(
        "divvi demo: {} reports of {} ({how}), batches of {}, {} spoiled on purpose, in {}",
        options.reports,
        options.vdaf,
        options.batch_size,
        options.invalid,
        options.dir.display()
    );
    if options.vdaf.is_heavy_hitters() {
        out!(
            "(stopped before the end, it goes on with: divvi demo --resume {})",
            options.dir.display()
        );
    }
    run_demo(&options, bars)
}

/// The result beside the truth, each stage's time, and OK or FAILED (the exit code).
fn print_summary(report: &DemoReport) -> ExitCode {
    out!();
    print_result(report);
    out!();
    let width = report
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(0)
        .max(12);
    out!(
        "{:>width$}  {:>9}  {:>11}  {:>12}",
        "stage",
        "seconds",
        "CPU seconds",
        "reports/s"
    );
    for s in &report.stages {
        // Collect reads two small sum parts: a rate means nothing there.
        let rate = match s.packets {
            0 => "-".to_string(),
            _ => format!("{:.0}", s.packets_per_second()),
        };
        out!(
            "{:>width$}  {:>9.2}  {:>11.2}  {:>12}",
            s.stage,
            s.seconds,
            s.cpu_seconds,
            rate
        );
    }
    if let Some(rss) = peak_rss() {
        out!("peak RSS {:.0} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    out!(
        "reports counted {} of {}, invalid found {} (spoiled {}):",
        report.clients,
        report.reports,
        report.invalid_found,
        report.invalid_injected
    );
    for r in &report.invalid {
        out!("  {}  {}", r.uuid, r.reason);
    }
    let what = report.vdaf.what();
    if report.matches() {
        out!("OK: the {what} matches the truth");
        ExitCode::SUCCESS
    } else {
        out!("FAILED: the {what} or the invalid count differs from the truth");
        ExitCode::FAILURE
    }
}

/// The result beside the truth: a table of rows, or one line for a single number.
fn print_result(report: &DemoReport) {
    let mark = |d: &u128, t: &u128| if d == t { "" } else { "  <-- differs" };
    match report.vdaf.row() {
        Some(row) => {
            out!("{row:>6}  {:>12}  {:>12}", "result", "truth");
            for (i, (d, t)) in report.result.iter().zip(&report.truth).enumerate() {
                let label = match &report.labels {
                    Some(labels) => labels[i].clone(),
                    None => i.to_string(),
                };
                out!("{label:>6}  {d:>12}  {t:>12}{}", mark(d, t));
            }
            if report.result.len() != report.truth.len() {
                out!(
                    "{} values, the truth has {}  <-- differs",
                    report.result.len(),
                    report.truth.len()
                );
            }
        }
        None => {
            for (d, t) in report.result.iter().zip(&report.truth) {
                out!(
                    "{}: result {d}, truth {t}{}",
                    report.vdaf.what(),
                    mark(d, t)
                );
            }
        }
    }
}
