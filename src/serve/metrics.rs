//! The upload server's metrics (served on their own port, never on the one devices
//! reach): reports and responses, journal commits, the flush backlog, and how long
//! uploads and segment flushes take.

use crate::metrics::{durations, Counter, Durations, Family, Gauge, Registry};
use std::sync::Arc;
use std::time::Duration;

type Label = [(&'static str, String); 1];

pub struct ServeMetrics {
    pub registry: Arc<Registry>,
    reports: Family<Label, Counter>,
    responses: Family<Label, Counter>,
    request_seconds: Durations<Label>,
    journal_commits: Counter,
    segments_pending: Gauge,
    segments_flushed: Counter,
    flush_failures: Counter,
    flush_seconds: Durations<Label>,
}

impl ServeMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reports = Family::default();
        registry.register(
            "divvi_serve_reports",
            "Reports uploaded: accepted (durable in the journal) or refused",
            reports.clone(),
        );
        let responses = Family::default();
        registry.register(
            "divvi_serve_responses",
            "Responses, by HTTP status",
            responses.clone(),
        );
        let request_seconds = durations();
        registry.register(
            "divvi_serve_request_duration_seconds",
            "Time from a request's arrival to its answer (an upload's includes the journal's fsync), by HTTP status",
            request_seconds.clone(),
        );
        let journal_commits = Counter::default();
        registry.register(
            "divvi_serve_journal_commits",
            "Group commits (one fsync each) of the write-ahead journal",
            journal_commits.clone(),
        );
        let segments_pending = Gauge::default();
        registry.register(
            "divvi_serve_segments_pending",
            "Sealed journal segments waiting to be flushed into ingestion batches",
            segments_pending.clone(),
        );
        let segments_flushed = Counter::default();
        registry.register(
            "divvi_serve_segments_flushed",
            "Journal segments written into ingestion batches and removed",
            segments_flushed.clone(),
        );
        let flush_failures = Counter::default();
        registry.register(
            "divvi_serve_flush_failures",
            "Failed attempts to flush a segment (each is retried)",
            flush_failures.clone(),
        );
        let flush_seconds = durations();
        registry.register(
            "divvi_serve_flush_duration_seconds",
            "Time each attempt to flush a sealed segment took, by outcome",
            flush_seconds.clone(),
        );
        ServeMetrics {
            registry: Arc::new(registry),
            reports,
            responses,
            request_seconds,
            journal_commits,
            segments_pending,
            segments_flushed,
            flush_failures,
            flush_seconds,
        }
    }

    pub fn reports(&self, outcome: &'static str, n: usize) {
        self.reports
            .get_or_create(&[("outcome", outcome.to_owned())])
            .inc_by(n as u64);
    }

    pub fn response(&self, status: u16, took: Duration) {
        let label = [("status", status.to_string())];
        self.responses.get_or_create(&label).inc();
        self.request_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    pub fn journal_commits(&self, n: u64) {
        self.journal_commits.inc_by(n);
    }

    pub fn segments_pending(&self, n: usize) {
        self.segments_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One attempt to flush a segment ended: flushed, or failed (to be retried).
    pub fn flush(&self, flushed: bool, took: Duration) {
        let outcome = if flushed { "flushed" } else { "failed" };
        if flushed {
            self.segments_flushed.inc();
        } else {
            self.flush_failures.inc();
        }
        self.flush_seconds
            .get_or_create(&[("outcome", outcome.to_owned())])
            .observe(took.as_secs_f64());
    }
}

impl Default for ServeMetrics {
    fn default() -> Self {
        Self::new()
    }
}
