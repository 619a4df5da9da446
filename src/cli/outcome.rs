//! How a command ended, and the exit code that says so. A scheduler must tell "failed"
//! (retry, alert) from "nothing to do" and "waiting" (for the peer, a validation or the
//! ingestor: try again at the next turn, no alert).

use std::process::ExitCode;

/// What `--help` says of exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done: the work asked for is done
  1  failed: an error (see stderr); retrying may help
  2  usage or configuration error: retrying will not help
  3  nothing to do: no pending batch or due run
  4  waiting: for the peer's validation or manifest, for the ingestor to finish a batch,
     or (collect) for a server's sum part
With --exit-codes scheduler (DIVVI_EXIT_CODES=scheduler), 3 and 4 exit 0: the outcome is
still in the JSON summary on stderr and in the job's metrics.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Done,
    Failed,
    NothingToDo,
    Waiting,
}

/// Whether "nothing to do" and "waiting" get codes of their own or exit 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExitCodes {
    #[default]
    Detailed,
    /// For job schedulers that count any non-zero exit as a failure.
    Scheduler,
}

const FAILED: u8 = 1;
const USAGE: u8 = 2;
const NOTHING_TO_DO: u8 = 3;
const WAITING: u8 = 4;

impl Ended {
    pub fn exit_code(self, mode: ExitCodes) -> ExitCode {
        let idle = |code| match mode {
            ExitCodes::Detailed => code,
            ExitCodes::Scheduler => 0,
        };
        ExitCode::from(match self {
            Ended::Done => 0,
            Ended::Failed => FAILED,
            Ended::NothingToDo => idle(NOTHING_TO_DO),
            Ended::Waiting => idle(WAITING),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Ended::Done => "done",
            Ended::Failed => "failed",
            Ended::NothingToDo => "nothing to do",
            Ended::Waiting => "waiting",
        }
    }
}

/// A config that does not load: a usage error, which no retry mends.
#[derive(Debug)]
pub struct ConfigError(pub anyhow::Error);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Marks a config-loading failure as a usage error (exit code 2).
pub fn config<T>(loaded: anyhow::Result<T>) -> anyhow::Result<T> {
    loaded.map_err(|e| anyhow::Error::new(ConfigError(e)))
}

/// The exit code of a command that ended in an error.
pub fn error_exit_code(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<ConfigError>() {
        Some(_) => ExitCode::from(USAGE),
        None => ExitCode::from(FAILED),
    }
}
