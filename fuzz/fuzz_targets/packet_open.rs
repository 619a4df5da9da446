//! A packet payload opened with a fixed ECIES or HPKE server key (or taken as plaintext),
//! then the Prio2 share functions (verifier_share, output_share, kept_share,
//! output_share_from_kept) for bins taken from the input.
//! See `fuzz/harness.rs` (`packet_open`) for the input layout.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::packet_open(data));
