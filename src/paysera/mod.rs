//! The Paysera (WebToPay) protocol, pure: no I/O, no HTTP or database types.
//!
//! `protocol.md` in the shared documents is the spec this follows section by section.

pub mod base64url;
mod current;
mod error;
pub mod gateway;
mod keys;
mod legacy;
pub mod php;
mod request;
mod verify;

pub use error::{CallbackError, RejectClass};
pub use keys::{HashAlg, KeyError, KeySet, PublicKey, PAYSERA_PRODUCTION_PEM};
pub use request::{
    build_payment_request, build_repeat_request, validate as validate_request, Environment,
    RequestError, SignedRequest, SPEC_VERSION,
};
pub use verify::{NoProjects, Policy, Project, RequestParams, Verifier};
