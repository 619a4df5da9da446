//! The metrics of one scheduled job run (intake, aggregate): what it processed, how long
//! it took, the bytes it moved, what is late or incomplete. Served while it runs with
//! `--metrics-port`, pushed to a Pushgateway when it ends with `--pushgateway`.

use divvi::config::Server;
use divvi::metrics::{push, serve, Metrics, MetricsServer};
use divvi::store::ByteCounters;
use std::sync::Arc;
use std::time::Instant;

pub struct JobMetrics {
    metrics: Arc<Metrics>,
    bytes: Arc<ByteCounters>,
    job: &'static str,
    aggregation: String,
    server: String,
    started: Instant,
    _serving: Option<MetricsServer>,
}

impl JobMetrics {
    /// Starts counting; with a port, serves `/metrics` until the job ends.
    pub fn start(
        job: &'static str,
        aggregation: &str,
        server: &Server,
        port: Option<u16>,
    ) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let serving = match port {
            Some(p) => {
                let s = serve(Arc::clone(&metrics), p)?;
                tracing::info!(address = %s.local_addr(), "serving metrics");
                Some(s)
            }
            None => None,
        };
        Ok(JobMetrics {
            metrics,
            bytes: Arc::new(ByteCounters::default()),
            job,
            aggregation: aggregation.to_string(),
            server: server.index.to_string(),
            started: Instant::now(),
            _serving: serving,
        })
    }

    /// Counts the bytes the job moves through this server's locations.
    pub fn meter(&self, server: Server) -> Server {
        server.metered(&self.bytes)
    }

    fn labels<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut labels = vec![
            ("job_name", self.job),
            ("server", self.server.as_str()),
            ("aggregation", self.aggregation.as_str()),
        ];
        labels.extend_from_slice(extra);
        labels
    }

    pub fn packets(&self, valid: u64, invalid: u64) {
        for (outcome, n) in [("valid", valid), ("invalid", invalid)] {
            self.metrics.add(
                "divvi_packets_total",
                "Packets processed, by outcome (invalid: left out at intake or refused in aggregate).",
                &self.labels(&[("outcome", outcome)]),
                n,
            );
        }
    }

    /// One batch (intake) or run (aggregate) finished: done, failed or waiting.
    pub fn batch(&self, outcome: &str) {
        self.metrics.add(
            "divvi_batches_total",
            "Batches (intake) or aggregation runs (aggregate) handled, by outcome.",
            &self.labels(&[("outcome", outcome)]),
            1,
        );
    }

    pub fn late(&self, batches: usize) {
        self.metrics.set(
            "divvi_late_batches",
            "Batches of decided windows that no aggregation run covers yet.",
            &self.labels(&[]),
            batches as f64,
        );
    }

    /// What the stage passed over, by kind; every kind is set (0 included) so an alert
    /// can be written on any of them.
    pub fn skipped(&self, skipped: &[divvi::skipped::Skipped]) {
        for kind in divvi::skipped::KINDS {
            let n = skipped.iter().filter(|s| s.kind == kind).count();
            self.metrics.set(
                "divvi_skipped",
                "Things passed over (missing locations, unknown aggregations, non-canonical keys, batches older than the lookback), by kind.",
                &self.labels(&[("kind", kind)]),
                n as f64,
            );
        }
    }

    pub fn incomplete(&self, batches: usize, overdue: usize) {
        self.metrics.set(
            "divvi_incomplete_batches",
            "Ingestion batches with objects still missing.",
            &self.labels(&[]),
            batches as f64,
        );
        self.metrics.set(
            "divvi_incomplete_overdue_batches",
            "Ingestion batches incomplete for longer than --incomplete-after.",
            &self.labels(&[]),
            overdue as f64,
        );
    }

    /// Final figures; pushes when a gateway is configured (a failed push is logged: the
    /// job's own work stands, and the stale last-success time will show it).
    pub fn finish(self, success: bool, pushgateway: Option<&str>, shard: Option<String>) {
        let m = &self.metrics;
        m.set(
            "divvi_job_duration_seconds",
            "Wall-clock time of the job run.",
            &self.labels(&[]),
            self.started.elapsed().as_secs_f64(),
        );
        for (direction, n) in [
            ("read", self.bytes.read()),
            ("written", self.bytes.written()),
        ] {
            m.add(
                "divvi_bytes_total",
                "Object bytes read and written (written: committed objects only).",
                &self.labels(&[("direction", direction)]),
                n,
            );
        }
        if success {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            m.set(
                "divvi_last_success_timestamp_seconds",
                "When the job last finished without failures (Unix time).",
                &self.labels(&[]),
                now,
            );
        }
        let Some(gateway) = pushgateway else {
            return;
        };
        // One group per server, aggregation and shard, so parallel workers do not
        // replace each other's metrics.
        let mut grouping = vec![
            ("server", self.server.as_str()),
            ("aggregation", self.aggregation.as_str()),
        ];
        let shard = shard.unwrap_or_default();
        if !shard.is_empty() {
            grouping.push(("shard", shard.as_str()));
        }
        if let Err(e) = push(m, gateway, &format!("divvi_{}", self.job), &grouping) {
            tracing::warn!(error = %e, "could not push metrics");
        }
    }
}
