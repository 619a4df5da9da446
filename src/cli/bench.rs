//! `divvi bench`: the throughput benchmark's command line and its output forms.

use super::progress;
use super::vdaf_args::VdafArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct BenchArgs {
    /// Reports (ENPA: packets) to make once and push through every stage.
    #[arg(long, default_value_t = 100_000)]
    packets: u64,
    #[command(flatten)]
    what: VdafArgs,
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
    let (vdaf, scheme) = a.what.resolve()?;
    let temp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("bench")
        }
    };
    let bars = progress::Bars::default();
    let r = divvi::bench::run_bench(&dir, a.packets, &vdaf, scheme, usize::from(a.repeat), &bars)?;
    match a.output {
        BenchOutput::Json => out!("{}", serde_json::to_string_pretty(&r)?),
        BenchOutput::Markdown => out!("{}", r.markdown().trim_end()),
        BenchOutput::Table => {
            out!(
                "{} reports of {} ({}), {} cores (batches made in {:.1}s)",
                r.packets,
                r.vdaf,
                r.scheme
                    .map_or("DAP-18".into(), |s| format!("ENPA, {s} packets")),
                r.cores,
                r.generate_seconds
            );
            out!(
                "{:>12}  {:>9}  {:>10}  {:>6}  {:>9}  {:>19}  {:>16}",
                "stage",
                "seconds",
                "reports/s",
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
