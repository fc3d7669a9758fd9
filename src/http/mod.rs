//! HTTP: translates requests into domain calls and outcomes into answers.

pub mod admin;
pub mod callback;
pub mod error;
pub mod health;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use secrecy::SecretString;

use crate::config::ProjectSettings;
use crate::domain::Rules;
use crate::paysera::Verifier;
use crate::store::Store;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub verifier: Arc<Verifier>,
    pub store: Store,
    pub rules: Rules,
    pub sms_reply: Option<String>,
    pub admin_token: SecretString,
    pub projects: Arc<Vec<ProjectSettings>>,
    /// Cleared when shutdown starts, so `/readyz` turns 503 first.
    pub accepting: Arc<AtomicBool>,
}

/// Most callbacks are under 2 KiB; the gateway's GET query is at most a few KiB.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;
