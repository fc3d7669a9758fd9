//! Fuzzes the gateway recipes: the gateways file's parser
//! (`config::gateways::parse`) on arbitrary text, and every built-in
//! profile's reader (`gateways::Recipe::read`) on arbitrary request bytes,
//! also signed with the profile's own recipe. The checks live in
//! `tests/support/fuzz_harness.rs` (`check_gateway`), shared with
//! `tests/protocol/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| harness::check_gateway(input));
