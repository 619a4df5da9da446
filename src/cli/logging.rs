//! Logs go to stderr; `RUST_LOG` picks the level, else `default` (the demo passes
//! "error": the packets it spoils on purpose are reported in its summary instead).

pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
