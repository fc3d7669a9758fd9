//! HTTP: translates requests into pipeline calls and what they came to into answers.

pub mod admin;
pub mod auth;
pub mod body;
pub mod callback;
pub mod connections;
pub mod error;
pub mod events;
pub mod health;
pub mod openapi;
pub mod return_url;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use secrecy::SecretString;

use crate::alerts::Alerter;
use crate::metrics::Metrics;
use crate::paysera::ProjectCredentials;
use crate::pipeline::{Pipeline, SelfCheck};
use crate::store::Store;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Parse, verify, decide, store: the one pipeline (the store's and the
    /// rules' home; `store` below is the same store).
    pub pipeline: Pipeline,
    /// `payhook check`, for the console (`None`: not offered).
    pub self_check: Option<SelfCheck>,
    /// The shop's endpoint, for test events (`None`: notifications off).
    pub shop: Option<Arc<crate::notify::ShopClient>>,
    /// Checkout projects' client ids, for the admin API's `project_id`.
    pub checkout_projects: Arc<Vec<String>>,
    pub store: Store,
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
    /// Where a request comes from, behind trusted proxies too: a gateway's
    /// sender allow-list reads it.
    pub clients: auth::ClientAddress,
}

impl AppState {
    /// The project an order belongs to: a classic project's number or a
    /// Checkout project's client id, as a string; the first configured by
    /// default. The error says why none fits.
    pub fn order_project(&self, requested: Option<&str>) -> Result<String, String> {
        let mut all = self.project_ids().into_iter();
        match requested {
            None => all
                .next()
                .ok_or_else(|| "no project configured".to_string()),
            Some(id) => all
                .find(|p| p == id)
                .ok_or_else(|| format!("project_id {id} is not configured")),
        }
    }

    /// Every project an order can belong to: the classic ones' numbers, the
    /// Checkout ones' client ids, then the hash-signed gateways' names.
    pub fn project_ids(&self) -> Vec<String> {
        let classic = self.projects.iter().map(|p| p.id.to_string());
        let gateways = self.pipeline.gateway_names().map(str::to_string);
        classic
            .chain(self.checkout_projects.iter().cloned())
            .chain(gateways)
            .collect()
    }

    /// `project_id` names a Checkout project (and no classic project has that
    /// number).
    pub fn is_checkout_project(&self, project_id: &str) -> bool {
        self.checkout_projects.iter().any(|p| p == project_id)
            && !self.projects.iter().any(|p| p.id.to_string() == project_id)
    }
}

pub use crate::pipeline::MAX_CALLBACK_BYTES;

/// The admin API's JSON bodies (an order's registration, a payment request).
pub const MAX_ADMIN_JSON_BYTES: usize = 64 * 1024;
