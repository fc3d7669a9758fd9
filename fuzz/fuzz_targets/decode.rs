//! Fuzzes the decoders on arbitrary bytes: `base64url::decode`, `php::parse_str`
//! (and `url_decode`), `RequestParams::from_query_or_url`. The checks live in
//! `tests/support/fuzz_harness.rs` (`check_decoders`), shared with
//! `tests/protocol/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/support/fuzz_harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| harness::check_decoders(input));
