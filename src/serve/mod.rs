//! `divvi serve`: the ingestor's DAP upload endpoint (issue 18), in the making. So far:
//! the write-ahead journal an upload is acknowledged against (`segments`), the group
//! commit that shares one fsync among many uploads (`durable`), the flush of a sealed
//! segment into signed ingestion batches, each report once (`flush`), and what each
//! request is answered, as plain functions (`routes`). Still to come: the hyper server
//! around them, SIGTERM, the CLI, and tests with real clients.

pub mod durable;
pub mod flush;
pub mod http;
pub mod routes;
pub mod segments;
