//! `divvi demo`: the whole pipeline on local folders, beside the truth.

use super::keygen::LayoutArgs;
use super::progress;
use anyhow::{bail, Result};
use chrono::Utc;
use clap::Args;
use divvi::crypto::PacketScheme;
use divvi::demo::{peak_rss, run_demo, DemoOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct DemoArgs {
    /// Folder for keys, configs and buckets (default: a fresh ./divvi-demo/<time>).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    reports: usize,
    #[arg(long, default_value_t = 16)]
    bins: usize,
    #[arg(long, default_value_t = 25_000)]
    batch_size: usize,
    /// How many reports to spoil on purpose (not-binary, undecryptable, bad r_pit, in turn).
    #[arg(long, default_value_t = 6)]
    invalid: usize,
    #[arg(long, default_value = "ecies")]
    scheme: PacketScheme,
    #[command(flatten)]
    layout: LayoutArgs,
}

pub(super) fn demo(a: DemoArgs) -> Result<ExitCode> {
    let dir = a.dir.unwrap_or_else(|| {
        PathBuf::from("divvi-demo").join(Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    let options = DemoOptions {
        dir,
        reports: a.reports,
        bins: a.bins,
        batch_size: a.batch_size,
        invalid: a.invalid,
        scheme: a.scheme,
        layout: a.layout.layout(),
    };
    if options.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    out!(
        "divvi demo: {} reports, {} bins, batches of {}, {} spoiled on purpose, {} packets, in {}",
        options.reports,
        options.bins,
        options.batch_size,
        options.invalid,
        options.scheme,
        options.dir.display()
    );
    let bars = progress::Bars::default();
    let report = run_demo(&options, &bars)?;
    out!();
    out!("{:>5}  {:>10}  {:>10}", "bin", "divvi", "truth");
    for (i, (d, t)) in report.histogram.iter().zip(&report.truth).enumerate() {
        let mark = if d == t { "" } else { "  <-- differs" };
        out!("{i:>5}  {d:>10}  {t:>10}{mark}");
    }
    out!();
    out!("{:>12}  {:>9}  {:>12}", "stage", "seconds", "packets/s");
    for s in &report.stages {
        // Collect reads two small sum parts: a packet rate means nothing there.
        let rate = match s.packets {
            0 => "-".to_string(),
            _ => format!("{:.0}", s.packets_per_second()),
        };
        out!("{:>12}  {:>9.2}  {:>12}", s.stage, s.seconds, rate);
    }
    if let Some(rss) = peak_rss() {
        out!("peak RSS {:.0} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    out!(
        "clients counted {}, invalid packets found {} (spoiled {}):",
        report.clients,
        report.invalid_found,
        report.invalid_injected
    );
    for r in &report.invalid {
        out!("  {}  {}", r.uuid, r.reason);
    }
    if report.matches() {
        out!("OK: the histogram matches the truth");
        Ok(ExitCode::SUCCESS)
    } else {
        out!("FAILED: the histogram or the invalid count differs from the truth");
        Ok(ExitCode::FAILURE)
    }
}
