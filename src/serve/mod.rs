//! `divvi serve`: the ingestor's DAP upload endpoint (issue 18). The write-ahead journal
//! an upload is acknowledged against (`segments`), the group commit that shares one fsync
//! among many uploads (`durable`), the queue of sealed segments and its backlog
//! (`backlog`), the flush of a sealed segment into signed ingestion batches, each report
//! once (`flush`), what each request is answered, as plain functions (`routes`), and the
//! hyper server with readiness, metrics and graceful shutdown around them (`http`).

pub mod backlog;
pub mod durable;
pub mod flush;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod segments;
