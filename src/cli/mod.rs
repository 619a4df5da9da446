//! Command-line interface: one subcommand per job.

pub mod logging;
mod progress;

/// Prints a line to stdout; a closed pipe (`divvi ... | head`) ends output quietly
/// instead of panicking.
macro_rules! out {
    () => { $crate::cli::emit("\n") };
    ($($arg:tt)*) => { $crate::cli::emit(&format!("{}\n", format_args!($($arg)*))) };
}

mod bench;
mod check;
mod client;
mod collect;
mod demo;
mod docs;
mod ingest;
mod inspect;
mod intake;
mod job_metrics;
mod keygen;
mod outcome;
mod output;
mod passes;
mod plot;
mod runs;
mod serve;
mod vdaf_args;

pub use outcome::error_exit_code;
use outcome::ExitCodes;

pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing output: {e}");
        std::process::exit(1);
    }
}

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};
use divvi::batch::{parse_time, Window};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "divvi",
    version,
    about = "Privacy-preserving aggregate statistics: the ENPA Prio batch pipeline",
    after_help = outcome::EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON or text; auto is JSON unless stderr is a terminal.
    #[arg(long, global = true, env = "DIVVI_LOG_FORMAT", default_value = "auto")]
    log_format: logging::LogFormat,
    /// Push the job's metrics to this Prometheus Pushgateway when it ends (http://host:port,
    /// or https:// with basic auth from the environment: DIVVI_PUSHGATEWAY_USERNAME and
    /// DIVVI_PUSHGATEWAY_PASSWORD).
    #[arg(long, global = true, env = "DIVVI_PUSHGATEWAY")]
    pushgateway: Option<String>,
    /// Serve the job's metrics at http://0.0.0.0:PORT/metrics while it runs.
    #[arg(long, global = true, env = "DIVVI_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// detailed: 3 for nothing to do, 4 for waiting; scheduler: both exit 0 (see below).
    #[arg(
        long,
        global = true,
        env = "DIVVI_EXIT_CODES",
        default_value = "detailed"
    )]
    exit_codes: ExitCodes,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on a fresh deployment (a Prio3 histogram, or --vdaf) and
    /// compare the result with the truth.
    Demo(demo::DemoArgs),
    /// Make keys and configs: every party's at once, or one party's with a manifest for the
    /// others (--party), their imports (--import) and key rotation.
    Keygen(keygen::KeygenArgs),
    /// (ingestor) Turn measurements into signed ingestion batches for both servers.
    Ingest(ingest::IngestArgs),
    /// (server) Verify ingestion batches and write validation batches.
    Intake(intake::IntakeArgs),
    /// (server) Sum the valid packets of a window into a signed sum part.
    Aggregate(runs::AggregateArgs),
    /// (server) Heavy hitters (Poplar1): run the pass the portal asked for, both rounds
    /// and its sum part, as far as the peer's shares allow now.
    Passes(passes::PassesArgs),
    /// (portal) Combine both servers' sum parts into the result.
    Collect(collect::CollectArgs),
    /// (portal) Draw an aggregation's results over time and its latest run: SVG files
    /// and an HTML page that opens offline.
    Plot(plot::PlotArgs),
    /// (server) Per window: open, pending, done, late or failed.
    Status(runs::StatusArgs),
    /// (server 0) Leave a batch out of every run of its aggregation (server 1 follows):
    /// for a batch that cannot be summed and would hold its window back.
    Exclude(runs::ExcludeArgs),
    /// Show any ENPA object as JSON, with signature and digest verdicts.
    Inspect(inspect::InspectArgs),
    /// Load a server, ingestor or portal config and every key it names; no storage is touched.
    Check(check::CheckArgs),
    /// Throughput benchmark: one batch, intake and aggregate on both servers.
    Bench(bench::BenchArgs),
    /// (DAP client) Turn JSON-lines measurements into a DAP-18 upload body of sealed reports.
    Client(client::ClientArgs),
    /// (ingestor) Take DAP-18 report uploads over HTTP into signed ingestion batches
    /// (work in progress).
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Write the man pages: divvi.1 and one page per command.
    Man(docs::ManArgs),
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    logging::init(
        match cli.command {
            Command::Demo(_) | Command::Bench(_) => "error",
            _ => "warn",
        },
        cli.log_format,
    );
    let metrics_args = MetricsArgs {
        pushgateway: cli.pushgateway.as_deref().map(pushgateway).transpose()?,
        port: cli.metrics_port,
    };
    let exit_codes = cli.exit_codes;
    match cli.command {
        Command::Demo(a) => demo::demo(a),
        Command::Keygen(a) => keygen::keygen_command(a),
        Command::Ingest(a) => ingest::ingest_command(a),
        Command::Intake(a) => Ok(intake::intake_command(a, &metrics_args)?.exit_code(exit_codes)),
        Command::Aggregate(a) => {
            Ok(runs::aggregate_command(a, &metrics_args)?.exit_code(exit_codes))
        }
        Command::Passes(a) => Ok(passes::passes_command(a)?.exit_code(exit_codes)),
        Command::Status(a) => runs::status_command(a),
        Command::Exclude(a) => runs::exclude_command(a),
        Command::Collect(a) => collect::collect_command(a, exit_codes),
        Command::Plot(a) => plot::plot_command(a),
        Command::Bench(a) => bench::bench(a),
        Command::Check(a) => check::check_command(a),
        Command::Client(a) => client::client_command(a),
        Command::Serve(a) => serve::serve_command(a),
        Command::Inspect(a) => inspect::inspect_command(a),
        Command::Completions(a) => docs::completions_command(a),
        Command::Man(a) => docs::man_command(a),
    }
}

/// Where a job's metrics go (global flags).
pub struct MetricsArgs {
    pub pushgateway: Option<divvi::metrics::Pushgateway>,
    pub port: Option<u16>,
}

/// The Pushgateway at `url`, with basic-auth credentials from the environment (a
/// Kubernetes Secret), never from the command line; checked before the job's work.
fn pushgateway(url: &str) -> Result<divvi::metrics::Pushgateway> {
    const USERNAME: &str = "DIVVI_PUSHGATEWAY_USERNAME";
    const PASSWORD: &str = "DIVVI_PUSHGATEWAY_PASSWORD";
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let auth = match (read(USERNAME), read(PASSWORD)) {
        (Some(username), Some(password)) => {
            Some(divvi::metrics::BasicAuth::new(username, password))
        }
        (None, None) => None,
        _ => {
            bail!("set both {USERNAME} and {PASSWORD} for the Pushgateway's basic auth, or neither")
        }
    };
    let gateway = divvi::metrics::Pushgateway::new(url, auth);
    gateway.check()?;
    Ok(gateway)
}

/// Windows longer than this need `--force`: a longer one is most likely a mistyped date,
/// and would read and sum far more than meant.
const MAX_WINDOW_DAYS: i64 = 31;

fn window(start: &str, end: &str, force: bool) -> Result<Window> {
    let start = parse_time(start).map_err(|e| anyhow!(e))?;
    let end = parse_time(end).map_err(|e| anyhow!(e))?;
    let window = Window::new(start, end).map_err(|e| anyhow!(e))?;
    let span = window.end - window.start;
    if span > chrono::TimeDelta::days(MAX_WINDOW_DAYS) && !force {
        bail!(
            "window --start {start} --end {end} spans {} days, over the bound of {MAX_WINDOW_DAYS} days (a mistyped date?); pass --force if it is meant",
            span.num_days()
        );
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_of_every_command_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "divvi", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}
