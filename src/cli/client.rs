//! `divvi client`: measurements (JSON lines) in, a DAP-18 UploadRequest body out: the
//! reports of every line, sealed to the task's aggregators, concatenated. All lines are
//! read and checked before anything is written, and the output appears whole or not at all.

use anyhow::{bail, Context, Result};
use clap::Args;
use divvi::dap::{encode_reports, DapClient, Measurement, Task};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct ClientArgs {
    /// The task file (public JSON: ids, endpoints, VDAF, HPKE configs).
    #[arg(long)]
    task: PathBuf,
    /// JSON lines, one measurement per line; "-" for stdin.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the UploadRequest body (written whole, or not at all).
    #[arg(long)]
    output: PathBuf,
    /// The reports' time: RFC 3339 or Unix seconds (default: now). Truncated to the
    /// task's time_precision.
    #[arg(long)]
    time: Option<String>,
}

fn unix_seconds(text: Option<&str>) -> Result<u64> {
    let Some(text) = text else {
        return u64::try_from(chrono::Utc::now().timestamp()).context("the clock is before 1970");
    };
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--time {text:?} is neither Unix seconds nor RFC 3339"))?;
    u64::try_from(time.timestamp()).with_context(|| format!("--time {text:?} is before 1970"))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening input {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    reader
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading input {}", path.display()))
}

pub fn client_command(a: ClientArgs) -> Result<ExitCode> {
    let task = Task::load(&a.task)?;
    let time = unix_seconds(a.time.as_deref())?;
    let client = DapClient::new(&task)?;
    let input = a.input.display();
    let mut reports = Vec::new();
    for (i, line) in read_lines(&a.input)?.iter().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            bail!("{input} line {n}: empty line (one JSON measurement per line)");
        }
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{input} line {n}: not JSON"))?;
        let measurement = Measurement::from_json(task.vdaf(), &value)
            .with_context(|| format!("{input} line {n}"))?;
        let report = client
            .report(&measurement, time)
            .with_context(|| format!("{input} line {n}"))?;
        reports.push(report);
    }
    let body = encode_reports(task.version(), &reports)?;
    divvi::files::write_atomically(&a.output, &body)?;
    let summary = serde_json::json!({
        "task_id": task.task_id().to_base64url(),
        "vdaf": task.vdaf().name(),
        "reports": reports.len(),
        "bytes": body.len(),
        "time": time / task.time_precision(),
        "output": a.output.display().to_string(),
    });
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}
