//! Tests of the wire layer: roundtrips, malformed input, and the ENPA interop sample.

mod datums;
mod errors;
pub(crate) mod fixtures;
mod hostile;
mod roundtrip;
mod sample;
