//! A signed batch in a temporary LocalStore: header, packet file and signature objects from
//! the input (or only the packet file, with a header the harness signs), opened with
//! open_batch and read to the end.
//! See `fuzz/harness.rs` (`batch_open`) for the input layout.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::batch_open(data));
