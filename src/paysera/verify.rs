//! The verifier: request parameters in, a `VerifiedCallback` or a precise error out.

use super::context::{Context, Policy};
use super::error::CallbackError;
use super::keys::KeySet;
use super::legacy;
use super::params::RequestParams;
use super::project::Project;
use crate::domain::VerifiedCallback;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at least one project must be configured")]
pub struct NoProjects;

#[derive(Debug, Clone)]
pub struct Verifier {
    context: Context,
}

impl Verifier {
    pub fn new(projects: Vec<Project>, keys: KeySet, policy: Policy) -> Result<Self, NoProjects> {
        if projects.is_empty() {
            return Err(NoProjects);
        }
        Ok(Verifier {
            context: Context {
                projects,
                keys,
                policy,
            },
        })
    }

    /// The classic verifier of a service whose projects are all Checkout ones
    /// (a complete configuration): it refuses every classic callback, before
    /// any password or project would be looked for, as naming no project.
    pub fn without_projects(keys: KeySet, policy: Policy) -> Self {
        Verifier {
            context: Context {
                projects: Vec::new(),
                keys,
                policy,
            },
        }
    }

    pub fn keys(&self) -> &KeySet {
        &self.context.keys
    }

    pub fn policy(&self) -> Policy {
        self.context.policy
    }

    pub fn projects(&self) -> &[Project] {
        &self.context.projects
    }

    /// Proves the callback authentic before anything else is decoded, then
    /// decodes it, checks the project and types the fields.
    pub fn verify(&self, params: &RequestParams) -> Result<VerifiedCallback, CallbackError> {
        if self.context.projects.is_empty() {
            Err(CallbackError::NoClassicProject)
        } else if params.has("data") {
            self.context.verify_current(params)
        } else if legacy::is_legacy(params) {
            self.context.verify_legacy(params)
        } else {
            Err(CallbackError::MissingData)
        }
    }
}
