//! The Paysera (WebToPay) protocol as a receiver needs it, pure: no I/O, no
//! HTTP or database types, no private key (the gateway's side is `crate::sim`).
//!
//! `docs/protocol.md` (vendored) is the spec this follows section by section.

pub mod base64url;
mod context;
mod current;
pub(crate) mod digest;
mod error;
mod keys;
mod legacy;
mod params;
pub mod php;
mod project;
mod request;
mod verify;

pub use context::Policy;
pub use error::{CallbackError, RejectClass};
pub use keys::{HashAlg, KeyError, KeySet, PublicKey, Validity, PAYSERA_PRODUCTION_PEM};
pub use params::{query_of, RequestParams, SignedQuery};
pub use project::{Project, ProjectCredentials};
pub use request::{
    build_payment_request, build_repeat_request, validate as validate_request, Environment,
    RequestError, SignedRequest, SPEC_VERSION,
};
pub use verify::{NoProjects, Verifier};
