//! The gateway projects: `PAYSERA_PROJECT_ID`/`PAYSERA_PROJECT_PASSWORD` (a
//! classic project), `PAYSERA_CHECKOUT_CLIENT_ID`/`PAYSERA_CHECKOUT_SECRET`
//! (a Checkout project), plus any in the TOML file `PAYHOOK_CONFIG_FILE`.

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
    /// `classic` (the default) or `checkout`.
    api: Option<String>,
    id: Option<u64>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    /// Checkout: the API client id, and its secrets (the current one first).
    client_id: Option<String>,
    secrets: Option<Vec<String>>,
    secret_files: Option<Vec<PathBuf>>,
}

/// A Checkout (Modern) project: its API client id is its `project_id`, and
/// any of its secrets may sign its webhooks (the current one first, then the
/// previous ones during a rotation).
#[derive(Clone)]
pub struct CheckoutProject {
    pub client_id: String,
    /// (label, secret): the label is what logs say matched.
    pub secrets: Vec<(String, SecretString)>,
}

/// Every project, by API.
pub(super) struct Projects {
    pub classic: Vec<ProjectCredentials>,
    pub checkout: Vec<CheckoutProject>,
}

/// Projects from `PAYSERA_PROJECT_ID`/`PAYSERA_PROJECT_PASSWORD`, plus any in the
/// TOML file `PAYHOOK_CONFIG_FILE` (a shop often has a test and a live project).
pub(super) fn read(env: &Env<'_>) -> Result<Projects, ConfigError> {
    let mut projects = Vec::new();
    let mut checkout = checkout_from_env(env)?;
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
            if p.api.as_deref() == Some("checkout") {
                let project = checkout_from_file(key, p)?;
                if checkout
                    .iter()
                    .any(|q: &CheckoutProject| q.client_id == project.client_id)
                {
                    return Err(bad(
                        key,
                        format!("client_id {} is configured twice", project.client_id),
                    ));
                }
                checkout.push(project);
                continue;
            }
            if p.api.as_deref().is_some_and(|api| api != "classic") {
                return Err(bad(key, "api must be \"classic\" or \"checkout\""));
            }
            if p.client_id.is_some() || p.secrets.is_some() || p.secret_files.is_some() {
                return Err(bad(
                    key,
                    "client_id, secrets and secret_files belong to a project with api = \"checkout\"",
                ));
            }
            let Some(id) = p.id else {
                return Err(bad(key, "a classic project needs id (its project number)"));
            };
            let password = match (p.password, p.password_file) {
                (Some(pw), None) => pw,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| {
                        bad(
                            key,
                            format!("project {id}: cannot read {}: {e}", f.display()),
                        )
                    })?,
                _ => {
                    return Err(bad(
                        key,
                        format!("project {id}: give exactly one of password, password_file"),
                    ))
                }
            };
            if projects.iter().any(|q: &ProjectCredentials| q.id == id) {
                return Err(bad(key, format!("project {id} is configured twice")));
            }
            projects.push(ProjectCredentials {
                id,
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
    Ok(Projects {
        classic: projects,
        checkout,
    })
}

/// `PAYSERA_CHECKOUT_CLIENT_ID` with `PAYSERA_CHECKOUT_SECRET` (and
/// `PAYSERA_CHECKOUT_SECRET_PREVIOUS` during a rotation).
fn checkout_from_env(env: &Env<'_>) -> Result<Vec<CheckoutProject>, ConfigError> {
    let current = env.secret("PAYSERA_CHECKOUT_SECRET")?;
    let previous = env.secret("PAYSERA_CHECKOUT_SECRET_PREVIOUS")?;
    let Some(client_id) = env.get("PAYSERA_CHECKOUT_CLIENT_ID") else {
        if current.is_some() || previous.is_some() {
            return Err(bad(
                "PAYSERA_CHECKOUT_CLIENT_ID",
                "required with PAYSERA_CHECKOUT_SECRET",
            ));
        }
        return Ok(Vec::new());
    };
    let client_id = client_id_of("PAYSERA_CHECKOUT_CLIENT_ID", &client_id)?;
    let current = current.ok_or_else(|| {
        bad(
            "PAYSERA_CHECKOUT_SECRET",
            "required with PAYSERA_CHECKOUT_CLIENT_ID",
        )
    })?;
    let mut secrets = vec![("current".to_string(), current)];
    if let Some(previous) = previous {
        secrets.push(("previous".to_string(), previous));
    }
    if secrets.iter().any(|(_, s)| s.expose_secret().is_empty()) {
        return Err(bad("PAYSERA_CHECKOUT_SECRET", "is empty"));
    }
    Ok(vec![CheckoutProject { client_id, secrets }])
}

fn checkout_from_file(key: &str, p: FileProject) -> Result<CheckoutProject, ConfigError> {
    let Some(client_id) = p.client_id else {
        return Err(bad(
            key,
            "a project with api = \"checkout\" needs client_id (the API client id)",
        ));
    };
    let client_id = client_id_of(key, &client_id)?;
    if p.id.is_some() || p.password.is_some() || p.password_file.is_some() {
        return Err(bad(
            key,
            format!("Checkout project {client_id}: id, password and password_file belong to classic projects"),
        ));
    }
    let mut secrets = Vec::new();
    for (i, secret) in p.secrets.unwrap_or_default().into_iter().enumerate() {
        secrets.push((
            format!("{client_id} secret {}", i + 1),
            SecretString::from(secret),
        ));
    }
    for file in p.secret_files.unwrap_or_default() {
        let secret = std::fs::read_to_string(&file)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| {
                bad(
                    key,
                    format!(
                        "Checkout project {client_id}: cannot read {}: {e}",
                        file.display()
                    ),
                )
            })?;
        let label = format!("{client_id} {}", file.display());
        secrets.push((label, SecretString::from(secret)));
    }
    if secrets.is_empty() || secrets.iter().any(|(_, s)| s.expose_secret().is_empty()) {
        return Err(bad(
            key,
            format!("Checkout project {client_id}: give secrets or secret_files, none empty"),
        ));
    }
    Ok(CheckoutProject { client_id, secrets })
}

/// A client id is stored as the project's id and shown in URLs: printable,
/// no spaces, at most 64 bytes.
fn client_id_of(key: &str, text: &str) -> Result<String, ConfigError> {
    if text.is_empty() || text.len() > 64 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            key,
            "a client id is 1 to 64 printable characters without spaces",
        ));
    }
    Ok(text.to_string())
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
        "a value has the wrong type (id is a number; password, password_file and client_id are \
         strings; secrets and secret_files are lists of strings)"
            .to_string()
    } else {
        "not valid TOML; expected [[projects]] tables with id and password or password_file"
            .to_string()
    }
}

/// 1-based line of a byte offset.
pub(super) fn line_number(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
