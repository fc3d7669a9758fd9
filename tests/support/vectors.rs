//! Where the test vectors are: `tests/vectors/`, a copy of the shared set with
//! its README, unchanged, so the repository stands alone. Missing vectors fail
//! loudly, never skip.

use std::path::{Path, PathBuf};

pub fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    assert!(
        dir.join("current").is_dir(),
        "test vectors not found at {}",
        dir.display()
    );
    dir
}
