//! The gateway projects: `PAYSERA_PROJECT_ID`/`PAYSERA_PROJECT_PASSWORD`, plus
//! any in the TOML file `PAYHOOK_CONFIG_FILE`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::env::Env;
use super::{bad, one_line, ConfigError};
use crate::paysera::ProjectCredentials;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    projects: Vec<FileProject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProject {
    id: u64,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

/// Projects from `PAYSERA_PROJECT_ID`/`PAYSERA_PROJECT_PASSWORD`, plus any in the
/// TOML file `PAYHOOK_CONFIG_FILE` (a shop often has a test and a live project).
pub(super) fn read(env: &Env<'_>) -> Result<Vec<ProjectCredentials>, ConfigError> {
    let mut projects = Vec::new();
    if let Some(id) = env.get("PAYSERA_PROJECT_ID") {
        // The value is not quoted back: a password pasted into the wrong key
        // must not end up in a log.
        let id: u64 = id.parse().map_err(|_| {
            bad(
                "PAYSERA_PROJECT_ID",
                "is not a project number (digits only)",
            )
        })?;
        let password = env.secret("PAYSERA_PROJECT_PASSWORD")?.ok_or_else(|| {
            bad(
                "PAYSERA_PROJECT_PASSWORD",
                "required with PAYSERA_PROJECT_ID",
            )
        })?;
        projects.push(ProjectCredentials { id, password });
    } else if env.secret("PAYSERA_PROJECT_PASSWORD")?.is_some() {
        return Err(bad(
            "PAYSERA_PROJECT_ID",
            "required with PAYSERA_PROJECT_PASSWORD",
        ));
    }
    if let Some(path) = env.get("PAYHOOK_CONFIG_FILE") {
        let key = "PAYHOOK_CONFIG_FILE";
        let text = std::fs::read_to_string(&path)
            .map_err(|e| bad(key, format!("cannot read {path}: {e}")))?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| format!(" line {}", line_number(&text, span.start)))
                .unwrap_or_default();
            bad(key, format!("{path}{line}: {}", toml_reason(e.message())))
        })?;
        if file.projects.is_empty() {
            return Err(bad(
                key,
                format!("{path} lists no project (add [[projects]] with id and password_file)"),
            ));
        }
        for p in file.projects {
            let password = match (p.password, p.password_file) {
                (Some(pw), None) => pw,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| {
                        bad(
                            key,
                            format!("project {}: cannot read {}: {e}", p.id, f.display()),
                        )
                    })?,
                _ => {
                    return Err(bad(
                        key,
                        format!(
                            "project {}: give exactly one of password, password_file",
                            p.id
                        ),
                    ))
                }
            };
            if projects.iter().any(|q: &ProjectCredentials| q.id == p.id) {
                return Err(bad(key, format!("project {} is configured twice", p.id)));
            }
            projects.push(ProjectCredentials {
                id: p.id,
                password: SecretString::from(password),
            });
        }
    }
    for p in &projects {
        if p.password.expose_secret().is_empty() {
            return Err(bad(
                "PAYSERA_PROJECT_PASSWORD",
                format!("project {}: empty password", p.id),
            ));
        }
    }
    Ok(projects)
}

/// A TOML error's reason, without any value from the file: serde's type errors
/// quote the value (`invalid type: integer `1234`…`), which may be a password.
fn toml_reason(message: &str) -> String {
    let names_only = [
        "unknown field",
        "missing field",
        "duplicate key",
        "duplicate field",
    ];
    if names_only.iter().any(|p| message.starts_with(p)) {
        one_line(message)
    } else if message.starts_with("invalid") && message.contains("expected") {
        "a value has the wrong type (id is a number; password and password_file are strings)"
            .to_string()
    } else {
        "not valid TOML; expected [[projects]] tables with id and password or password_file"
            .to_string()
    }
}

/// 1-based line of a byte offset.
fn line_number(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
