//! `divvi serve`: the ingestor's DAP upload endpoint (issue 18), in the making. So far:
//! the write-ahead journal an upload is acknowledged against (`segments`), and the group
//! commit that shares one fsync among many uploads (`durable`).

pub mod durable;
pub mod segments;
