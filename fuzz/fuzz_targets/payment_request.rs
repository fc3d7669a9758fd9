//! Fuzzes `build_payment_request` with arbitrary fields, then reads the signed
//! request back the way the gateway does: base64url-decode `data`, `parse_str` it.
//! The checks live in `tests/support/fuzz_harness.rs` (`check_payment_request`),
//! shared with `tests/protocol/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Put the four required fields first (so most inputs build).
    required: bool,
    project_id: u64,
    password: String,
    version: String,
    params: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    harness::check_payment_request(
        input.required,
        input.project_id,
        &input.password,
        &input.version,
        input.params,
    )
});
