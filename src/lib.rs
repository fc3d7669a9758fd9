//! payhook: a strict, durable receiver for Paysera payment callbacks.

pub mod alerts;
pub mod check;
pub mod checkout;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod gateways;
pub mod http;
pub mod keyfile;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod paysera;
pub mod pipeline;
pub mod sim;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
