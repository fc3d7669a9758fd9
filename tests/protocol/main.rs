//! The gateway protocols without a database: the shared vectors of both
//! APIs, property round trips of signing and verifying, and the inputs the
//! fuzz targets found.

#[path = "../support/mod.rs"]
mod support;

mod checkout_roundtrip;
mod checkout_vectors;
mod fuzz_regressions;
mod gateway_roundtrip;
mod gateway_vectors;
mod roundtrip;
mod vectors;
