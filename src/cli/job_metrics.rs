//! The metrics of one scheduled job run (intake, aggregate): what it processed, how long
//! each batch or run and the whole job took, the bytes it moved, what is late or
//! incomplete. Served while it runs with `--metrics-port`, pushed to a Pushgateway when
//! it ends with `--pushgateway`.
//!
//! Every series carries the job's labels (`job_name`, `server`, `aggregation`) as
//! constant labels of the registry.

use divvi::config::Server;
use divvi::metrics::{
    durations, push, serve, Counter, Durations, Family, FloatGauge, MetricsServer, Pushgateway,
    Registry,
};
use divvi::store::ByteCounters;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One label of a family (outcome, kind, direction): its values are fixed words.
type Label = [(&'static str, &'static str); 1];

pub struct JobMetrics {
    registry: Arc<Registry>,
    packets: Family<Label, Counter>,
    batches: Family<Label, Counter>,
    batch_seconds: Durations<Label>,
    job_seconds: Durations<Label>,
    bytes: Family<Label, Counter>,
    late: FloatGauge,
    skipped: Family<Label, FloatGauge>,
    incomplete: FloatGauge,
    incomplete_overdue: FloatGauge,
    last_success: FloatGauge,
    moved: Arc<ByteCounters>,
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
        let server_label = server.index.to_string();
        let mut registry = Registry::with_labels(
            [
                ("job_name", Cow::Borrowed(job)),
                ("server", Cow::Owned(server_label.clone())),
                ("aggregation", Cow::Owned(aggregation.to_owned())),
            ]
            .into_iter()
            .map(|(k, v)| (Cow::Borrowed(k), v)),
        );
        let packets = Family::default();
        registry.register(
            "divvi_packets",
            "Packets processed, by outcome (invalid: left out at intake or refused in aggregate).",
            packets.clone(),
        );
        let batches = Family::default();
        registry.register(
            "divvi_batches",
            "Batches (intake) or aggregation runs (aggregate) handled, by outcome.",
            batches.clone(),
        );
        let batch_seconds = durations();
        registry.register(
            "divvi_batch_duration_seconds",
            "Time each batch (intake) or aggregation run (aggregate) took, by outcome.",
            batch_seconds.clone(),
        );
        let job_seconds = durations();
        registry.register(
            "divvi_job_duration_seconds",
            "Wall-clock time of the job run, by outcome (success or failure).",
            job_seconds.clone(),
        );
        let bytes = Family::default();
        registry.register(
            "divvi_bytes",
            "Object bytes read and written (written: committed objects only).",
            bytes.clone(),
        );
        let late = FloatGauge::default();
        registry.register(
            "divvi_late_batches",
            "Batches of decided windows that no aggregation run covers yet.",
            late.clone(),
        );
        let skipped = Family::default();
        registry.register(
            "divvi_skipped",
            "Things passed over (missing locations, unknown aggregations, non-canonical keys, batches older than the lookback), by kind.",
            skipped.clone(),
        );
        let incomplete = FloatGauge::default();
        registry.register(
            "divvi_incomplete_batches",
            "Ingestion batches with objects still missing.",
            incomplete.clone(),
        );
        let incomplete_overdue = FloatGauge::default();
        registry.register(
            "divvi_incomplete_overdue_batches",
            "Ingestion batches incomplete for longer than --incomplete-after.",
            incomplete_overdue.clone(),
        );
        let last_success = FloatGauge::default();
        registry.register(
            "divvi_last_success_timestamp_seconds",
            "When the job last finished without failures (Unix time).",
            last_success.clone(),
        );
        let registry = Arc::new(registry);
        let serving = match port {
            Some(p) => {
                let s = serve(Arc::clone(&registry), p)?;
                tracing::info!(address = %s.local_addr(), "serving metrics");
                Some(s)
            }
            None => None,
        };
        Ok(JobMetrics {
            registry,
            packets,
            batches,
            batch_seconds,
            job_seconds,
            bytes,
            late,
            skipped,
            incomplete,
            incomplete_overdue,
            last_success,
            moved: Arc::new(ByteCounters::default()),
            job,
            aggregation: aggregation.to_string(),
            server: server_label,
            started: Instant::now(),
            _serving: serving,
        })
    }

    /// Counts the bytes the job moves through this server's locations.
    pub fn meter(&self, server: Server) -> Server {
        server.metered(&self.moved)
    }

    pub fn packets(&self, valid: u64, invalid: u64) {
        for (outcome, n) in [("valid", valid), ("invalid", invalid)] {
            self.packets
                .get_or_create(&[("outcome", outcome)])
                .inc_by(n);
        }
    }

    /// One batch (intake) or run (aggregate) finished: done, failed or waiting, after
    /// `took`.
    pub fn batch(&self, outcome: &'static str, took: Duration) {
        let label = [("outcome", outcome)];
        self.batches.get_or_create(&label).inc();
        self.batch_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    pub fn late(&self, batches: usize) {
        self.late.set(batches as f64);
    }

    /// What the stage passed over, by kind; every kind is set (0 included) so an alert
    /// can be written on any of them.
    pub fn skipped(&self, skipped: &[divvi::skipped::Skipped]) {
        for kind in divvi::skipped::KINDS {
            let n = skipped.iter().filter(|s| s.kind == kind).count();
            self.skipped.get_or_create(&[("kind", kind)]).set(n as f64);
        }
    }

    pub fn incomplete(&self, batches: usize, overdue: usize) {
        self.incomplete.set(batches as f64);
        self.incomplete_overdue.set(overdue as f64);
    }

    /// Final figures; pushes when a gateway is configured (a failed push is logged: the
    /// job's own work stands, and the stale last-success time will show it).
    pub fn finish(self, success: bool, pushgateway: Option<&Pushgateway>, shard: Option<String>) {
        let outcome = if success { "success" } else { "failure" };
        self.job_seconds
            .get_or_create(&[("outcome", outcome)])
            .observe(self.started.elapsed().as_secs_f64());
        for (direction, n) in [
            ("read", self.moved.read()),
            ("written", self.moved.written()),
        ] {
            self.bytes
                .get_or_create(&[("direction", direction)])
                .inc_by(n);
        }
        if success {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            self.last_success.set(now);
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
        let job = format!("divvi_{}", self.job);
        if let Err(e) = push(&self.registry, gateway, &job, &grouping) {
            tracing::warn!(error = %e, "could not push metrics");
        }
    }
}
