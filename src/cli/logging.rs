//! Logs go to stderr: human-readable on a terminal, one JSON object per line otherwise
//! (for log collectors), or as `--log-format` says. `RUST_LOG` picks the level, else
//! `default` (the demo passes "error": the packets it spoils on purpose are reported in
//! its summary instead).

use std::io::IsTerminal;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    Auto,
    Json,
    Text,
}

pub fn init(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
