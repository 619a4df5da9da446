//! Prometheus metrics of one run: families registered on a `prometheus_client`
//! registry, rendered in the Prometheus text format 0.0.4 by that crate, served on
//! `/metrics` while a long run lasts ([`exposition`]) or pushed to a Pushgateway when
//! a job ends ([`push`]).
//!
//! Which families exist is decided where they are counted (`cli::job_metrics` for the
//! scheduled jobs, `serve::metrics` for the upload server); this module only holds
//! what both need.

pub mod exposition;
pub mod push;

pub use exposition::{serve, MetricsServer};
pub use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
pub use prometheus_client::registry::Registry;
pub use push::{push, BasicAuth, Pushgateway};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::net::SocketAddr;

/// A gauge holding a float (durations, timestamps, counts set as a whole).
pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A family of duration histograms (seconds), one per label set.
pub type Durations<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 10 ms to about 5.5 minutes, doubling: a request's acknowledgement,
/// a batch's intake and a long run's sum all fall inside.
pub fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// An empty family of duration histograms.
pub fn durations<L>() -> Durations<L>
where
    L: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(duration_histogram as fn() -> Histogram)
}

/// The registry in the Prometheus text format 0.0.4, families in registration order.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; an encoder error would be a label that cannot
    // be written, which the fixed label types here rule out. A scrape still gets what
    // was written before it.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        tracing::warn!("metrics: cannot render every family: {e}");
    }
    text
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error("invalid Pushgateway URL {url:?}: {reason}")]
    InvalidGateway { url: String, reason: String },
    /// The URL itself is withheld from the message because it holds a secret.
    #[error("Pushgateway URL must not contain credentials (URL not shown); set DIVVI_PUSHGATEWAY_USERNAME and DIVVI_PUSHGATEWAY_PASSWORD")]
    CredentialsInUrl,
    #[error("Pushgateway {url}: credentials are only sent over https://, never in clear text")]
    CredentialsOverHttp { url: String },
    #[error("cannot push to Pushgateway {url}: {reason}")]
    InvalidGrouping { url: String, reason: String },
    #[error("push to {url} failed: {reason}")]
    Push { url: String, reason: String },
    #[error("push to {url} rejected with HTTP {status} {status_text}")]
    Rejected {
        url: String,
        status: u16,
        status_text: &'static str,
    },
    #[error("cannot serve metrics on {addr}: {reason}")]
    Serve { addr: SocketAddr, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    // That the text parses with Prometheus' own parser is checked on a real job's push
    // (tests/runs.rs); here, the shapes divvi relies on.
    #[test]
    fn counters_gauges_and_duration_histograms_render_as_prometheus_reads_them() {
        let mut registry = Registry::default();
        let counted: Family<[(&str, &str); 1], Counter> = Family::default();
        registry.register("divvi_things", "Things.", counted.clone());
        let taken: Durations<[(&str, &str); 1]> = durations();
        registry.register("divvi_took_seconds", "How long.", taken.clone());
        let level = FloatGauge::default();
        registry.register("divvi_level", "Level.", level.clone());
        counted
            .get_or_create(&[("kind", "a \"quoted\" \u{fc}")])
            .inc_by(3);
        taken.get_or_create(&[("stage", "x")]).observe(0.015);
        taken.get_or_create(&[("stage", "x")]).observe(400.0);
        level.set(-1.5);

        let text = render(&registry);
        for line in [
            "# TYPE divvi_things_total counter",
            "divvi_things_total{kind=\"a \\\"quoted\\\" \u{fc}\"} 3",
            "# TYPE divvi_took_seconds histogram",
            // 15 ms lands in the 20 ms bucket (buckets count all below them), 400 s
            // only in +Inf: the last finite bucket is 0.01 * 2^15 = 327.68 s.
            "divvi_took_seconds_bucket{stage=\"x\",le=\"0.01\"} 0",
            "divvi_took_seconds_bucket{stage=\"x\",le=\"0.02\"} 1",
            "divvi_took_seconds_bucket{stage=\"x\",le=\"327.68\"} 1",
            "divvi_took_seconds_bucket{stage=\"x\",le=\"+Inf\"} 2",
            "divvi_took_seconds_count{stage=\"x\"} 2",
            "divvi_level -1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
    }
}
