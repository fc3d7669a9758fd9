//! What every verification reads: the configured projects, the gateway's keys
//! and the policy. The two callback forms (`current`, `legacy`) are checked
//! over it; `verify` only chooses between them.

use super::error::{printable, CallbackError};
use super::keys::KeySet;
use super::project::Project;
use crate::domain::{FieldValue, Fields, PaymentKind, Proof, VerifiedCallback};

/// Which signatures decide, beyond the official library's rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept a callback that carries no RSA signature on a valid `ss1`
    /// (legacy: `_ss1v2`, else `_ss1`). A present RSA signature still decides.
    pub accept_ss1: bool,
    /// Every signature present must verify, `ss1` included.
    pub strict: bool,
    /// Accept legacy 1.x (`wp_`) callbacks at all. Off by default: the gateway's
    /// key has not changed since 2009, so every legacy callback ever published
    /// stays replayable, and `_ss2` signs values without their names.
    pub accept_legacy: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Context {
    pub(super) projects: Vec<Project>,
    pub(super) keys: KeySet,
    pub(super) policy: Policy,
}

impl Context {
    pub(super) fn keys(&self) -> &KeySet {
        &self.keys
    }

    pub(super) fn policy(&self) -> Policy {
        self.policy
    }

    /// Indices of the projects that have a password, or the error naming what needed one.
    pub(super) fn passwords(
        &self,
        needed_for: &'static str,
    ) -> Result<impl Iterator<Item = (usize, &str)>, CallbackError> {
        if self.projects.iter().all(|p| p.password().is_none()) {
            return Err(CallbackError::PasswordNeeded(needed_for));
        }
        Ok(self
            .projects
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.password().map(|pw| (i, pw))))
    }

    /// Matches `projectid` against the configuration (exact string equality, as
    /// the library compares), or against the project a password already proved.
    pub(super) fn project_for(
        &self,
        fields: &Fields,
        proved_by: Option<usize>,
    ) -> Result<usize, CallbackError> {
        let id = match fields.get("projectid") {
            None => return Err(CallbackError::ProjectMissing),
            Some(FieldValue::List(_)) => {
                return Err(CallbackError::ProjectNotConfigured("Array".into()))
            }
            Some(FieldValue::Text(id)) => id,
        };
        let found = match proved_by {
            Some(i) => (self.projects[i].id() == id).then_some(i),
            None => self.projects.iter().position(|p| p.id() == id),
        };
        found.ok_or_else(|| CallbackError::ProjectNotConfigured(printable(id.as_bytes())))
    }

    pub(super) fn finish(
        &self,
        project: usize,
        proof: Proof,
        kind: PaymentKind,
        fields: Fields,
    ) -> Result<VerifiedCallback, CallbackError> {
        Ok(VerifiedCallback::new(
            self.projects[project].id().to_string(),
            proof,
            kind,
            fields,
        )?)
    }
}
