//! The verifier: request parameters in, a `VerifiedCallback` or a precise error out.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::error::{printable, CallbackError};
use super::keys::KeySet;
use super::php;
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at least one project must be configured")]
pub struct NoProjects;

/// The request's parameters as PHP's `$_REQUEST` holds them: query, then the
/// form body over it.
#[derive(Debug, Clone, Default)]
pub struct RequestParams {
    pub(super) array: php::Array,
    /// Top-level names given more than once (in the query, the body, or both):
    /// PHP keeps only the last value, so the parsed array alone cannot show them.
    pub(super) repeated: Vec<Vec<u8>>,
}

impl RequestParams {
    pub fn parse(query: &[u8], form_body: &[u8]) -> Self {
        let mut repeated = Vec::new();
        let mut array = php::parse_str_noting_repeats(query, &mut repeated);
        let body = php::parse_str_noting_repeats(form_body, &mut repeated);
        array.merge_over_noting_repeats(body, &mut repeated);
        RequestParams { array, repeated }
    }

    /// A bare query string, or a whole callback URL as copied from the gateway's panel.
    pub fn from_query_or_url(input: &str) -> Self {
        let input = input.trim();
        let query = match input.split_once('?') {
            Some((_, q)) => q,
            None => input,
        };
        let query = query.split('#').next().unwrap_or_default();
        Self::parse(query.as_bytes(), b"")
    }

    pub(super) fn str_param(&self, name: &str) -> Result<Option<&[u8]>, CallbackError> {
        match self.array.get_str(name.as_bytes()) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(())) => Err(CallbackError::NotAValue(name.to_string())),
        }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.array.contains_key(name.as_bytes())
    }
}

#[derive(Debug, Clone)]
pub struct Verifier {
    projects: Vec<Project>,
    keys: KeySet,
    policy: Policy,
}

impl Verifier {
    pub fn new(projects: Vec<Project>, keys: KeySet, policy: Policy) -> Result<Self, NoProjects> {
        if projects.is_empty() {
            return Err(NoProjects);
        }
        Ok(Verifier {
            projects,
            keys,
            policy,
        })
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn projects(&self) -> &[Project] {
        &self.projects
    }

    /// Proves the callback authentic before anything else is decoded, then
    /// decodes it, checks the project and types the fields.
    pub fn verify(&self, params: &RequestParams) -> Result<VerifiedCallback, CallbackError> {
        if params.has("data") {
            self.verify_current(params)
        } else if super::legacy::is_legacy(params) {
            self.verify_legacy(params)
        } else {
            Err(CallbackError::MissingData)
        }
    }

    /// Indices of the projects that have a password, or the error naming what needed one.
    pub(super) fn passwords(
        &self,
        needed_for: &'static str,
    ) -> Result<impl Iterator<Item = (usize, &str)>, CallbackError> {
        if self.projects.iter().all(|p| p.password.is_none()) {
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
            Some(i) => (self.projects[i].id == *id).then_some(i),
            None => self.projects.iter().position(|p| p.id == *id),
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
            self.projects[project].id.clone(),
            proof,
            kind,
            fields,
        )?)
    }
}

/// Turns PHP's byte strings into UTF-8 fields; the gateway sends UTF-8 text, so
/// anything else is refused rather than guessed at.
pub(super) fn to_fields(array: php::Array) -> Result<Fields, CallbackError> {
    array
        .iter()
        .map(|(k, v)| {
            let name =
                String::from_utf8(k.to_vec()).map_err(|_| CallbackError::NotUtf8(printable(k)))?;
            let value = match v {
                php::Value::Str(s) => FieldValue::Text(
                    String::from_utf8(s.clone())
                        .map_err(|_| CallbackError::NotUtf8(printable(k)))?,
                ),
                php::Value::Array(a) => FieldValue::List(to_fields(a.clone())?),
            };
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Fields::new)
}

/// Lower-case hex MD5, compared in constant time with what was received.
pub(super) fn md5_matches(input: &[&[u8]], received: &[u8]) -> bool {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for part in input {
        h.update(part);
    }
    let expected = hex::encode(h.finalize());
    expected.as_bytes().ct_eq(received).into()
}

pub(super) fn md5_hex(input: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(input))
}
