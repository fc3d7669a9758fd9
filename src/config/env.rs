//! Reading the environment: plain values, secrets (or the file `KEY_FILE`
//! names), flags, numbers, addresses and durations, each failing with the key
//! it is about; and the `./.env` file that may fill the environment first.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use super::{bad, ConfigError};

/// The environment as `Settings::from_lookup` is given it.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// Present at all, even empty.
    pub(super) fn is_set(&self, key: &str) -> bool {
        (self.0)(key).is_some()
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `KEY`, or the contents of the file named by `KEY_FILE` (for container secrets).
    pub(super) fn secret(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        if let Some(v) = (self.0)(key).filter(|v| !v.is_empty()) {
            return Ok(Some(SecretString::from(v)));
        }
        let file_key = format!("{key}_FILE");
        match self.get(&file_key) {
            None => Ok(None),
            Some(path) => read_secret_file(Path::new(&path))
                .map(Some)
                .map_err(|e| bad(&file_key, format!("cannot read {path}: {e}"))),
        }
    }

    pub(super) fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no" | "off") => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some(other) => Err(bad(key, format!("{other:?} is not true or false"))),
        }
    }

    pub(super) fn socket(&self, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let text = self.get(key).unwrap_or(default.to_string());
        text.parse().map_err(|_| {
            bad(
                key,
                format!("{text:?} is not an address like 127.0.0.1:8080"),
            )
        })
    }

    pub(super) fn number(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(key, format!("{v:?} is not a positive whole number"))),
        }
    }

    pub(super) fn positive_duration(
        &self,
        key: &str,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        match self.duration(key, default)? {
            d if d.is_zero() => Err(bad(key, "must be more than 0")),
            d => Ok(d),
        }
    }

    pub(super) fn duration(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        let text = self.get(key).unwrap_or(default.to_string());
        parse_duration(&text).ok_or_else(|| {
            bad(
                key,
                format!("{text:?} is not a duration like 90s, 10m or 3d"),
            )
        })
    }
}

/// A secret kept in a file (a container secret, a `*_file` setting): its
/// content, a final line ending dropped.
pub fn read_secret_file(path: &Path) -> std::io::Result<SecretString> {
    let text = std::fs::read_to_string(path)?;
    Ok(SecretString::from(
        text.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// Durations everywhere in the `90s` / `10m` / `3d` form (also `h`, `ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

/// Why `./.env` could not be used. One line, never the content of a line:
/// it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error(".env line {line}: cannot be parsed (the line is not shown; quote a value that has spaces, quotes or #)")]
    Parse { line: usize },
    #[error(".env: cannot be parsed (the line is not shown)")]
    Unplaced,
    #[error(".env line {line}: not valid UTF-8")]
    Encoding { line: usize },
    #[error(".env: cannot be read: {0}")]
    Read(std::io::Error),
}

/// Loads `path` (the service passes `./.env`: never a parent directory's, which
/// belongs to something else) into the environment. Variables already set win.
/// All or nothing: a file with a bad line sets no variable. `Ok(false)`: no file.
pub fn load_dotenv(path: &Path) -> Result<bool, DotenvError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(DotenvError::Read(e)),
    };
    for (key, value) in parse_dotenv(&bytes)? {
        if std::env::var_os(&key).is_none() {
            std::env::set_var(key, value);
        }
    }
    Ok(true)
}

/// The variables of a `.env` file, in file order.
pub fn parse_dotenv(bytes: &[u8]) -> Result<Vec<(String, String)>, DotenvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| DotenvError::Encoding {
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1,
    })?;
    let mut vars = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(var) => vars.push(var),
            Err(dotenvy::Error::Io(e)) => return Err(DotenvError::Read(e)),
            Err(_) => {
                return Err(match failing_line(text, vars.len()) {
                    Some(line) => DotenvError::Parse { line },
                    None => DotenvError::Unplaced,
                })
            }
        }
    }
    Ok(vars)
}

/// The line where parsing stopped, after `parsed` good entries. dotenvy's error
/// carries only a fragment of the text, so: the good entries end at the
/// shortest run of whole lines that still yields all of them, and the bad entry
/// starts at the next line that is neither blank nor a comment.
fn failing_line(text: &str, parsed: usize) -> Option<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let good_end = if parsed == 0 {
        0
    } else {
        (1..=lines.len()).find(|&k| {
            let prefix = lines[..k].concat();
            dotenvy::from_read_iter(prefix.as_bytes())
                .take_while(Result::is_ok)
                .count()
                >= parsed
        })?
    };
    lines
        .iter()
        .enumerate()
        .skip(good_end)
        .find(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(n, _)| n + 1)
}
