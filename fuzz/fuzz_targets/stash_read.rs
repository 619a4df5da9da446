//! A share stash read with StashReader and a fixed stash key: the whole file from the
//! input, or frames of fuzzed plaintext sealed by the harness.
//! See `fuzz/harness.rs` (`stash_read`) for the input layout.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::stash_read(data));
