//! divvi: the ENPA Prio batch pipeline (ingest, intake, aggregate, collect) as a library.
//! Layers, lowest first: `wire` (Avro records), `crypto` (signatures, packet sealing),
//! `vdaf` (Prio2 glue), `batch` (objects of a batch), `store` (object storage),
//! `stages` (the jobs), and the CLI on top in `main.rs` / `cli`.

pub mod batch;
pub mod bench;
pub mod config;
pub mod crypto;
pub mod dap;
pub mod demo;
pub mod inspect;
pub mod keygen;
pub mod metrics;
pub mod reports;
pub mod runs;
pub mod schedule;
pub mod skipped;
pub mod stages;
pub mod stash;
pub mod store;
pub mod vdaf;
pub mod wire;
