//! Arbitrary bytes to decode_single of each header and signature record (IngestionHeader,
//! ValidityHeader, SumPart, BatchSignature).
//! See `fuzz/harness.rs` (`wire_single`) for the input layout.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::wire_single(data));
