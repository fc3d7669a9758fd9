//! Fuzzes the whole callback check: `RequestParams::parse` then `Verifier::verify`,
//! plus forged `ss1`, AES-256-GCM and legacy proofs for the same bytes taken as
//! decoded content. The checks live in `tests/support/fuzz_harness.rs`
//! (`check_callback`), shared with `tests/protocol/fuzz_regressions.rs`.
//!
//! Input: `query` [`\0` `form body`] (split at the first NUL byte), so a plain
//! callback query string is a valid input (the seeds are exactly that).

#![no_main]

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| harness::check_callback(input));
