//! The pipeline's jobs. Each is a function from (party, task) to a report; none knows
//! about the command line. Progress is reported through a `Tick` callback.

pub mod aggregate;
mod checks;
pub mod collect;
pub mod ingest;
pub mod intake;
mod packets;

pub use checks::check_ingestion_header;
pub use packets::open_packet;

/// Called with the number of packets just processed, for progress display.
pub type Tick<'a> = &'a (dyn Fn(u64) + Sync);

/// A tick that does nothing.
pub fn no_tick(_: u64) {}

/// Packets are read and processed in chunks of this many: enough to keep every core busy,
/// few enough that memory does not grow with the batch.
pub const CHUNK: usize = 512;

/// A packet left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub uuid: uuid::Uuid,
    pub reason: String,
}
