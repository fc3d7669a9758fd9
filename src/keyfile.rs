//! Reading the gateway's public key files (the I/O edge of `paysera::KeySet`).

use std::path::{Path, PathBuf};

use crate::paysera::{KeyError, KeySet};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read public key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("public key file {path}: {source}")]
    Parse { path: PathBuf, source: KeyError },
}

/// Every key in every file; a callback verifying under any of them is accepted.
pub fn load_public_keys<P: AsRef<Path>>(paths: &[P]) -> Result<KeySet, KeyFileError> {
    let mut all: Option<KeySet> = None;
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let keys = KeySet::from_pem(&text).map_err(|source| KeyFileError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        match &mut all {
            Some(set) => set.extend(keys),
            None => all = Some(keys),
        }
    }
    Ok(all.unwrap_or_else(KeySet::paysera_production))
}
