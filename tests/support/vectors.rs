//! Where the shared test vectors are: `../shared/vectors` beside the repository,
//! or `PAYHOOK_VECTORS_DIR`. Missing vectors fail loudly, never skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("PAYHOOK_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"));
    assert!(
        dir.join("current").is_dir(),
        "shared vectors not found at {} (set PAYHOOK_VECTORS_DIR)",
        dir.display()
    );
    dir
}
