//! payhook: a strict, durable receiver for Paysera payment callbacks.

pub mod cli;
pub mod domain;
pub mod keyfile;
pub mod paysera;
