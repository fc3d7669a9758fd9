//! A gateway project as configured: the id and the password it shares with the gateway.

use secrecy::{ExposeSecret, SecretString};

/// A gateway project payhook answers for.
#[derive(Clone)]
pub struct Project {
    id: String,
    password: Option<SecretString>,
}

impl Project {
    pub fn new(id: u64, password: Option<SecretString>) -> Self {
        Project {
            id: id.to_string(),
            password,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("id", &self.id)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A configured project with its password, as start-up reads it: what signs
/// payment requests and proves `ss1`, `_ss1`/`_ss1v2` and encrypted callbacks.
#[derive(Clone, Debug)]
pub struct ProjectCredentials {
    pub id: u64,
    pub password: SecretString,
}

impl From<&ProjectCredentials> for Project {
    fn from(credentials: &ProjectCredentials) -> Project {
        Project::new(credentials.id, Some(credentials.password.clone()))
    }
}
