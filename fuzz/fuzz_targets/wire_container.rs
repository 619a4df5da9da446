//! Arbitrary bytes as an Avro container of each of the seven ENPA records (decode_all,
//! RecordReader to the end) and to record_name.
//! See `fuzz/harness.rs` (`wire_container`) for the input layout.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::wire_container(data));
