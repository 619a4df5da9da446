//! divvi: a batch pipeline for private aggregation (ENPA's Prio2 today, DAP-18 with
//! Prio3 in progress) as a library. Layers, lowest first: `ids` (server index, batch,
//! window and run identity), `wire` (Avro records), `crypto` (signatures, packet
//! sealing), `vdaf` (Prio2 glue), `dap` (DAP-18 tasks, reports and the client, with
//! Prio3), `batch` (objects of a batch), `store` (object storage), `stages` (the jobs),
//! `schedule` (what work is pending), and the CLI on top in `main.rs` / `cli`.

pub mod batch;
pub mod bench;
pub mod config;
pub mod crypto;
pub mod dap;
pub mod demo;
pub mod files;
pub mod ids;
pub mod inspect;
pub mod keygen;
pub mod metrics;
pub mod plot;
pub mod process;
pub mod reports;
pub mod schedule;
pub mod serve;
pub mod skipped;
pub mod stages;
pub mod stash;
pub mod store;
pub mod vdaf;
pub mod wire;
