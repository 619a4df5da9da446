//! `divvi bench`: the throughput benchmark's command line and its output forms.

use super::progress;
use anyhow::Result;
use clap::Args;
use divvi::crypto::PacketScheme;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct BenchArgs {
    #[arg(long, default_value_t = 100_000)]
    packets: u64,
    #[arg(long, default_value_t = 16)]
    bins: usize,
    #[arg(long, default_value = "ecies")]
    scheme: PacketScheme,
    /// Run each stage this many times and report the median run (and the range).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: u16,
    /// Where the batch is written and kept (default: a temporary folder, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output: a table, JSON, or a markdown table (for the README).
    #[arg(long, default_value = "table")]
    output: BenchOutput,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum BenchOutput {
    Table,
    Json,
    Markdown,
}

pub(super) fn bench(a: BenchArgs) -> Result<ExitCode> {
    let temp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("bench")
        }
    };
    let bars = progress::Bars::default();
    let r = divvi::bench::run_bench(
        &dir,
        a.packets,
        a.bins,
        a.scheme,
        usize::from(a.repeat),
        &bars,
    )?;
    match a.output {
        BenchOutput::Json => out!("{}", serde_json::to_string_pretty(&r)?),
        BenchOutput::Markdown => out!("{}", r.markdown().trim_end()),
        BenchOutput::Table => {
            out!(
                "{} packets, {} bins, {} packets, {} cores (batch made in {:.1}s)",
                r.packets,
                r.bins,
                r.scheme,
                r.cores,
                r.generate_seconds
            );
            out!(
                "{:>12}  {:>9}  {:>10}  {:>6}  {:>9}  {:>19}  {:>16}",
                "stage",
                "seconds",
                "packets/s",
                "CPU",
                "peak RSS",
                "range (runs)",
                "of floor (µs)"
            );
            for s in &r.stages {
                let rss = s.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
                let range = format!(
                    "{:.0}-{:.0} ({})",
                    s.packets_per_second_min, s.packets_per_second_max, s.runs
                );
                let of_floor = match (s.of_floor_percent, s.floor_us) {
                    (Some(pct), Some(us)) => format!("{pct:.0}% ({us:.0})"),
                    _ => "-".into(),
                };
                out!(
                    "{:>12}  {:>9.2}  {:>10.0}  {:>5.0}%  {:>9}  {:>19}  {:>16}",
                    s.stage,
                    s.seconds,
                    s.packets_per_second,
                    s.cpu_percent,
                    rss,
                    range,
                    of_floor
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
