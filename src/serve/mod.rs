//! `divvi serve`: the ingestor's DAP upload endpoint (issue 18), in the making. So far:
//! the write-ahead journal an upload is acknowledged against (`segments`), the group
//! commit that shares one fsync among many uploads (`durable`), and the flush of a
//! sealed segment into signed ingestion batches, each report once (`flush`).

pub mod durable;
pub mod flush;
pub mod segments;
