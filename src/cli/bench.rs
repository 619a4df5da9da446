//! `divvi bench`: the throughput benchmark's command line and its output forms.

use super::progress;
use super::vdaf_args::VdafArgs;
use anyhow::Result;
use clap::Args;
use divvi::demo::DemoVdaf;
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
    /// Measure the upload server instead: `divvi serve` on loopback under --clients
    /// keep-alive clients uploading --packets distinct reports (over and over) for
    /// --seconds. Needs a DAP task's VDAF.
    #[arg(long)]
    upload: bool,
    /// Upload bench: concurrent clients.
    #[arg(long, default_value_t = 64, requires = "upload")]
    clients: usize,
    /// Upload bench: how long the clients upload.
    #[arg(long, default_value_t = 60.0, requires = "upload")]
    seconds: f64,
    /// Upload bench: reports per upload (DAP-18 takes any number).
    #[arg(long, default_value_t = 1, requires = "upload")]
    reports_per_upload: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum BenchOutput {
    Table,
    Json,
    Markdown,
}

pub(super) fn bench(a: BenchArgs) -> Result<ExitCode> {
    let (vdaf, scheme) = a.what.resolve()?;
    if vdaf.is_heavy_hitters() {
        anyhow::bail!(
            "divvi bench measures intake and aggregate of one collection; {vdaf} runs in passes: its costs are measured by cargo bench --bench poplar1 (per level) and --bench poplar1_traversal (a whole traversal), and divvi demo --vdaf {vdaf} runs it through the buckets"
        );
    }
    let temp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("bench")
        }
    };
    if a.upload {
        return upload_bench(&a, &vdaf, &dir);
    }
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
                "{:>12}  {:>9}  {:>10}  {:>6}  {:>9}  {:>19}  {:>16}  {:>16}  {:>16}",
                "stage",
                "seconds",
                "reports/s",
                "CPU",
                "peak RSS",
                "range (runs)",
                "alone (µs)",
                "all busy (µs)",
                "in run (µs)"
            );
            for s in &r.stages {
                let rss = s.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
                let range = format!(
                    "{:.0}-{:.0} ({})",
                    s.packets_per_second_min, s.packets_per_second_max, s.runs
                );
                let share = |percent: Option<f64>, us: Option<f64>| match (percent, us) {
                    (Some(pct), Some(us)) => format!("{pct:.0}% ({us:.0})"),
                    _ => "-".into(),
                };
                out!(
                    "{:>12}  {:>9.2}  {:>10.0}  {:>5.0}%  {:>9}  {:>19}  {:>16}  {:>16}  {:>16}",
                    s.stage,
                    s.seconds,
                    s.packets_per_second,
                    s.cpu_percent,
                    rss,
                    range,
                    share(s.of_floor_percent, s.floor_us),
                    share(s.of_busy_floor_percent, s.busy_floor_us),
                    share(s.of_in_run_floor_percent, s.in_run_floor_us)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn upload_bench(a: &BenchArgs, vdaf: &DemoVdaf, dir: &std::path::Path) -> Result<ExitCode> {
    let DemoVdaf::Dap {
        version,
        vdaf: config,
    } = vdaf
    else {
        anyhow::bail!("--upload measures DAP uploads: give a Prio3 VDAF (--vdaf), not {vdaf}");
    };
    let load = divvi::bench::upload::UploadLoad {
        clients: a.clients,
        seconds: a.seconds,
        reports_per_upload: a.reports_per_upload,
        pool: usize::try_from(a.packets)?,
    };
    let r =
        divvi::bench::upload::run_upload_bench(dir, &vdaf.to_string(), (*version, config), &load)?;
    match a.output {
        BenchOutput::Json => out!("{}", serde_json::to_string_pretty(&r)?),
        BenchOutput::Table | BenchOutput::Markdown => {
            out!(
                "divvi serve on loopback: {} clients, {} report(s) per upload of {}, {:.0} s",
                r.clients,
                r.reports_per_upload,
                r.vdaf,
                r.seconds
            );
            out!(
                "  {:.0} reports/s ({:.0} uploads/s), {} uploads; {} answered 503",
                r.reports_per_second,
                r.uploads_per_second,
                r.uploads,
                r.busy_answers
            );
            out!(
                "  acknowledged in p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
                r.latency_p50_ms,
                r.latency_p99_ms,
                r.latency_max_ms
            );
            out!(
                "  journal: {:.0} group commits/s ({:.1} uploads each); the disk alone: {:.0} fsyncs/s",
                r.commits_per_second,
                r.uploads_per_commit,
                r.disk_fsyncs_per_second
            );
            let (first, max, last) = r.rss_mib_first_max_last();
            out!(
                "  CPU {:.0}% (server and clients); RSS {first:.0} -> max {max:.0} -> {last:.0} MiB; shutdown (drain + flush) {:.2} s",
                r.cpu_percent,
                r.shutdown_seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
