//! HTTP: translates requests into domain calls and outcomes into answers.

pub mod actions;
pub mod admin;
pub mod auth;
pub mod body;
pub mod callback;
pub mod checkout;
pub mod connections;
pub mod error;
pub mod events;
pub mod health;
pub mod return_url;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use secrecy::SecretString;

use crate::alerts::Alerter;
use crate::domain::Rules;
use crate::metrics::Metrics;
use crate::paysera::{ProjectCredentials, Verifier};
use crate::store::Store;

/// One line of the self-diagnosis (`payhook check`), as the console shows it
/// (and keeps it, as JSON, for `GET /ui/check`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckLine {
    pub check: String,
    /// `ok`, `warn`, `fail` or `skip`.
    pub status: String,
    pub detail: String,
    pub fix: Option<String>,
}

/// Runs `payhook check`'s checks from inside the service: given by start-up,
/// which knows the settings (the HTTP layer sits below the command).
pub type SelfCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<CheckLine>> + Send>>
        + Send
        + Sync,
>;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub verifier: Arc<Verifier>,
    /// Checkout (Modern) webhooks' verifier; `None` without a Checkout project.
    pub checkout: Option<Arc<crate::checkout::Verifier>>,
    /// What a Checkout webhook failing verification is answered.
    pub checkout_reject_status: u16,
    /// `payhook check`, for the console (`None`: not offered).
    pub self_check: Option<SelfCheck>,
    /// The shop's endpoint, for test events (`None`: notifications off).
    pub shop: Option<Arc<crate::notify::ShopClient>>,
    /// Checkout projects' client ids, for the admin API's `project_id`.
    pub checkout_projects: Arc<Vec<String>>,
    pub store: Store,
    pub rules: Rules,
    pub sms_reply: Option<String>,
    pub admin_token: SecretString,
    /// The projects payment requests are signed for (the first is the default).
    pub projects: Arc<Vec<ProjectCredentials>>,
    /// Cleared when shutdown starts, so `/readyz` turns 503 first.
    pub accepting: Arc<AtomicBool>,
    pub metrics: Metrics,
    pub alerter: Alerter,
    /// Log buyer personal data (e-mail, names) in the callback line.
    pub log_pii: bool,
    /// Where buyers are sent back through payhook (`PAYHOOK_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Bytes stored of a rejected request (`PAYHOOK_REJECTED_MAX_BYTES`).
    pub rejected_max_bytes: usize,
}

impl AppState {
    /// The callback pipeline, as the endpoint runs it (and replays).
    /// The project an order belongs to: a classic project's number or a
    /// Checkout project's client id, as a string; the first configured by
    /// default. The error says why none fits.
    pub fn order_project(&self, requested: Option<&str>) -> Result<String, String> {
        let classic = self.projects.iter().map(|p| p.id.to_string());
        let mut all = classic.chain(self.checkout_projects.iter().cloned());
        match requested {
            None => all
                .next()
                .ok_or_else(|| "no project configured".to_string()),
            Some(id) => all
                .find(|p| p == id)
                .ok_or_else(|| format!("project_id {id} is not configured")),
        }
    }

    pub fn pipeline(&self) -> callback::Pipeline<'_> {
        callback::Pipeline {
            verifier: &self.verifier,
            store: &self.store,
            rules: self.rules,
            rejected_max_bytes: self.rejected_max_bytes,
            checkout: self.checkout.as_deref(),
            checkout_reject_status: self.checkout_reject_status,
        }
    }
}

/// Most callbacks are under 2 KiB; the gateway's GET query is at most a few KiB.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// The admin API's JSON bodies (an order's registration, a payment request).
pub const MAX_ADMIN_JSON_BYTES: usize = 64 * 1024;
