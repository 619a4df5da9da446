//! Uploads measurements to a DAP-09 leader with the real `janus_client` crate (0.7.x, DAP-09
//! with VDAF-08 from prio 0.16), the way a Rust device using Janus's client would.
//!
//!   divvi-janus-client TASK_JSON LEADER_URL HELPER_URL MEASUREMENTS_JSONL
//!       [--concurrency N] [--max-retry-secs S] [--time UNIX_SECONDS]
//!
//! TASK_JSON is divvi's public task file; only `task_id`, `time_precision` and `vdaf` are read
//! (the HPKE configs are fetched from the aggregators by the library, as a device would).
//! MEASUREMENTS_JSONL holds one JSON value per line (blank lines skipped): true/false (or 0/1)
//! for count, an integer for sum, a bucket index for histogram, an array of integers for sumvec.
//!
//! On finishing, prints exactly one line to stdout:
//!   {"uploaded": <n>, "failed": <n>, "errors": [<first few error messages>]}
//! and exits 0 only when failed == 0, else 1. Bad arguments or an unusable task file: a message
//! on stderr, nothing on stdout, exit 2.

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use backoff::ExponentialBackoff;
use janus_client::{default_http_client, Client};
use janus_messages::{Duration, TaskId, Time};
use prio::vdaf::prio3::Prio3;
use serde_json::Value;
use url::Url;

const MAX_ERRORS: usize = 5;
const USAGE: &str = "usage: divvi-janus-client TASK_JSON LEADER_URL HELPER_URL MEASUREMENTS_JSONL \
                     [--concurrency N] [--max-retry-secs S] [--time UNIX_SECONDS]";

/// A bad argument or an unusable task file: reported on stderr with exit code 2.
struct UsageError(String);

impl<T: Display> From<T> for UsageError {
    fn from(msg: T) -> Self {
        UsageError(msg.to_string())
    }
}

struct Args {
    task_path: String,
    leader: Url,
    helper: Url,
    measurements_path: String,
    concurrency: usize,
    max_retry_secs: u64,
    time: Option<u64>,
}

/// The task's VDAF, with the parameters prio 0.16's constructors take.
#[derive(Debug, Clone, Copy)]
enum VdafSpec {
    Count,
    Sum {
        bits: usize,
    },
    Histogram {
        length: usize,
        chunk_length: usize,
    },
    SumVec {
        length: usize,
        bits: usize,
        chunk_length: usize,
    },
}

struct Task {
    task_id: TaskId,
    time_precision: u64,
    vdaf: VdafSpec,
}

/// One non-blank line of the measurements file.
struct Line {
    number: usize,
    text: String,
}

#[derive(Default)]
struct Tally {
    uploaded: usize,
    failed: usize,
    errors: Vec<String>,
}

impl Tally {
    fn fail(&mut self, msg: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(msg);
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (args, task, lines) = match setup(&argv) {
        Ok(x) => x,
        Err(UsageError(msg)) => {
            eprintln!("divvi-janus-client: {msg}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("divvi-janus-client: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let tally = match runtime.block_on(run(&args, &task, &lines)) {
        Ok(t) => t,
        Err(UsageError(msg)) => {
            eprintln!("divvi-janus-client: {msg}");
            return ExitCode::from(2);
        }
    };

    let out = serde_json::json!({
        "uploaded": tally.uploaded,
        "failed": tally.failed,
        "errors": tally.errors,
    });
    println!("{out}");
    if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn setup(argv: &[String]) -> Result<(Args, Task, Vec<Line>), UsageError> {
    let args = parse_args(argv)?;
    let raw_task = std::fs::read_to_string(&args.task_path)
        .map_err(|e| format!("cannot read task file {}: {e}", args.task_path))?;
    let task = parse_task(&raw_task)?;
    let raw_lines = std::fs::read_to_string(&args.measurements_path).map_err(|e| {
        format!(
            "cannot read measurements file {}: {e}",
            args.measurements_path
        )
    })?;
    let lines = raw_lines
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Line {
            number: i + 1,
            text: l.trim().to_string(),
        })
        .collect();
    Ok((args, task, lines))
}

fn parse_args(argv: &[String]) -> Result<Args, UsageError> {
    let mut positional = Vec::new();
    let mut concurrency = 1usize;
    let mut max_retry_secs = 10u64;
    let mut time = None;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match name {
            "-h" | "--help" => return Err(USAGE.into()),
            "--concurrency" | "--max-retry-secs" | "--time" => {
                let value = match inline.or_else(|| it.next().cloned()) {
                    Some(v) => v,
                    None => return Err(format!("{name} needs a value\n{USAGE}").into()),
                };
                let n: u64 = value.parse().map_err(|_| {
                    format!("{name} needs a non-negative integer, got {value:?}\n{USAGE}")
                })?;
                match name {
                    "--concurrency" => {
                        if n == 0 || n > 256 {
                            return Err(format!("--concurrency must be 1..=256\n{USAGE}").into());
                        }
                        concurrency = n as usize;
                    }
                    "--max-retry-secs" => max_retry_secs = n,
                    _ => time = Some(n),
                }
            }
            _ if name.starts_with("--") => {
                return Err(format!("unknown option {name}\n{USAGE}").into())
            }
            _ => positional.push(arg.clone()),
        }
    }
    let [task_path, leader, helper, measurements_path]: [String; 4] = positional
        .try_into()
        .map_err(|_| UsageError(USAGE.to_string()))?;
    Ok(Args {
        task_path,
        leader: parse_url(&leader, "LEADER_URL")?,
        helper: parse_url(&helper, "HELPER_URL")?,
        measurements_path,
        concurrency,
        max_retry_secs,
        time,
    })
}

fn parse_url(s: &str, what: &str) -> Result<Url, UsageError> {
    let url = Url::parse(s).map_err(|e| format!("{what} {s:?} is not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{what} {s:?} must be an http or https URL").into());
    }
    Ok(url)
}

fn parse_task(raw: &str) -> Result<Task, UsageError> {
    let doc: Value =
        serde_json::from_str(raw).map_err(|e| format!("task file is not JSON: {e}"))?;
    let task_id_str = doc
        .get("task_id")
        .and_then(Value::as_str)
        .ok_or("task file has no string task_id")?;
    let task_id: TaskId = task_id_str.parse().map_err(|e| {
        format!("task_id {task_id_str:?} is not 32 bytes of unpadded base64url: {e}")
    })?;
    let time_precision = doc
        .get("time_precision")
        .and_then(Value::as_u64)
        .filter(|&t| t > 0)
        .ok_or("task file has no positive integer time_precision")?;
    let vdaf = doc.get("vdaf").ok_or("task file has no vdaf object")?;
    let vdaf = parse_vdaf(vdaf)?;
    Ok(Task {
        task_id,
        time_precision,
        vdaf,
    })
}

fn field_usize(vdaf: &Value, name: &str) -> Result<usize, UsageError> {
    vdaf.get(name)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("vdaf.{name} is missing or not a non-negative integer").into())
}

/// Bits such that max_measurement == 2^bits - 1 (always so for divvi's DAP-09 tasks).
fn bits_for(vdaf: &Value) -> Result<usize, UsageError> {
    let max = vdaf
        .get("max_measurement")
        .and_then(Value::as_u64)
        .ok_or("vdaf.max_measurement is missing or not a u64")?;
    let plus_one = u128::from(max) + 1;
    if max == 0 || !plus_one.is_power_of_two() {
        return Err(format!(
            "vdaf.max_measurement {max} is not 2^bits - 1, which DAP-09 (VDAF-08) needs"
        )
        .into());
    }
    Ok(plus_one.trailing_zeros() as usize)
}

fn parse_vdaf(vdaf: &Value) -> Result<VdafSpec, UsageError> {
    let kind = vdaf
        .get("type")
        .and_then(Value::as_str)
        .ok_or("vdaf has no string type")?;
    Ok(match kind {
        "count" => VdafSpec::Count,
        "sum" => VdafSpec::Sum {
            bits: bits_for(vdaf)?,
        },
        "histogram" => VdafSpec::Histogram {
            length: field_usize(vdaf, "length")?,
            chunk_length: field_usize(vdaf, "chunk_length")?,
        },
        "sumvec" | "sum_vec" => VdafSpec::SumVec {
            length: field_usize(vdaf, "length")?,
            bits: bits_for(vdaf)?,
            chunk_length: field_usize(vdaf, "chunk_length")?,
        },
        other => return Err(format!("vdaf type {other:?} is not supported").into()),
    })
}

/// The error and its chain of causes (reqwest hides "connection refused" in a source).
fn describe(err: &dyn StdError) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

async fn run(args: &Args, task: &Task, lines: &[Line]) -> Result<Tally, UsageError> {
    let rejected =
        |e: prio::vdaf::VdafError| format!("VDAF parameters rejected by prio: {}", describe(&e));
    Ok(match task.vdaf {
        VdafSpec::Count => {
            let vdaf = Prio3::new_count(2).map_err(rejected)?;
            upload_all(args, task, lines, vdaf, parse_count).await
        }
        VdafSpec::Sum { bits } => {
            let vdaf = Prio3::new_sum(2, bits).map_err(rejected)?;
            // prio 0.16 rejects a too-large summand only with "input sizes do not match".
            let max = (1u128 << bits) - 1;
            let parse = move |v: &Value| {
                let m = parse_u128(v)?;
                if m > max {
                    return Err(format!("{m} exceeds max_measurement {max}"));
                }
                Ok(m)
            };
            upload_all(args, task, lines, vdaf, parse).await
        }
        VdafSpec::Histogram {
            length,
            chunk_length,
        } => {
            let vdaf = Prio3::new_histogram(2, length, chunk_length).map_err(rejected)?;
            // prio 0.16 panics (index out of bounds) on a bucket index >= length: check first.
            let parse = move |v: &Value| {
                let bucket = parse_usize(v)?;
                if bucket >= length {
                    return Err(format!("bucket index {bucket} is out of range 0..{length}"));
                }
                Ok(bucket)
            };
            upload_all(args, task, lines, vdaf, parse).await
        }
        VdafSpec::SumVec {
            length,
            bits,
            chunk_length,
        } => {
            let vdaf = Prio3::new_sum_vec(2, bits, length, chunk_length).map_err(rejected)?;
            upload_all(args, task, lines, vdaf, parse_u128_vec).await
        }
    })
}

fn parse_count(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        _ => Err(format!(
            "count measurement must be true/false or 0/1, got {v}"
        )),
    }
}

fn parse_u128(v: &Value) -> Result<u128, String> {
    v.as_u64()
        .map(u128::from)
        .ok_or_else(|| format!("expected a non-negative integer, got {v}"))
}

fn parse_usize(v: &Value) -> Result<usize, String> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("expected a bucket index, got {v}"))
}

fn parse_u128_vec(v: &Value) -> Result<Vec<u128>, String> {
    v.as_array()
        .ok_or_else(|| format!("expected an array of integers, got {v}"))?
        .iter()
        .map(parse_u128)
        .collect()
}

async fn upload_all<V, P>(args: &Args, task: &Task, lines: &[Line], vdaf: V, parse: P) -> Tally
where
    V: prio::vdaf::Client<16> + Clone,
    P: Fn(&Value) -> Result<V::Measurement, String>,
{
    let tally = RefCell::new(Tally::default());
    let fail_all = |msg: String| {
        let mut t = Tally::default();
        for _ in lines {
            t.fail(msg.clone());
        }
        t.errors.truncate(1);
        t
    };
    if lines.is_empty() {
        return tally.into_inner();
    }
    let http_client = match default_http_client() {
        Ok(c) => c,
        Err(e) => return fail_all(format!("building the HTTP client: {}", describe(&e))),
    };
    let backoff = ExponentialBackoff {
        initial_interval: StdDuration::from_millis(200),
        max_interval: StdDuration::from_secs(2),
        max_elapsed_time: Some(StdDuration::from_secs(args.max_retry_secs)),
        ..Default::default()
    };

    // janus_client's Client holds its two HPKE-config locks for the whole of an upload
    // (shard, seal and PUT), so clones of one Client upload one at a time. For N uploads in
    // flight, build N clients (each fetches both HPKE config lists itself).
    let n_clients = args.concurrency.min(lines.len());
    let mut clients = Vec::with_capacity(n_clients);
    for _ in 0..n_clients {
        let built = Client::builder(
            task.task_id,
            args.leader.clone(),
            args.helper.clone(),
            Duration::from_seconds(task.time_precision),
            vdaf.clone(),
        )
        .with_http_client(http_client.clone())
        .with_backoff(backoff.clone())
        .build()
        .await;
        match built {
            Ok(c) => clients.push(c),
            Err(e) => {
                return fail_all(format!(
                    "building the janus client (fetching HPKE configs): {}",
                    describe(&e)
                ))
            }
        }
    }

    let next = RefCell::new(0usize);
    let worker = |client: Client<V>| {
        let (tally, next, parse) = (&tally, &next, &parse);
        async move {
            loop {
                let line = {
                    let mut i = next.borrow_mut();
                    match lines.get(*i) {
                        Some(l) => {
                            *i += 1;
                            l
                        }
                        None => break,
                    }
                };
                let measurement = match serde_json::from_str::<Value>(&line.text)
                    .map_err(|e| e.to_string())
                    .and_then(|v| parse(&v))
                {
                    Ok(m) => m,
                    Err(e) => {
                        tally
                            .borrow_mut()
                            .fail(format!("line {}: bad measurement: {e}", line.number));
                        continue;
                    }
                };
                let result = match args.time {
                    Some(t) => {
                        client
                            .upload_with_time(&measurement, Time::from_seconds_since_epoch(t))
                            .await
                    }
                    None => client.upload(&measurement).await,
                };
                match result {
                    Ok(()) => tally.borrow_mut().uploaded += 1,
                    Err(e) => {
                        tally
                            .borrow_mut()
                            .fail(format!("line {}: {}", line.number, describe(&e)))
                    }
                }
            }
        }
    };
    futures::future::join_all(clients.into_iter().map(worker)).await;
    tally.into_inner()
}
