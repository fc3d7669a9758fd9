//! The real binaries: start-up and configuration, the operator's commands,
//! `payhook check`, demo mode, and what the service logs.

#[path = "../support/mod.rs"]
mod support;

mod check_cli;
mod check_replication;
mod checkout_cli;
mod config_startup;
mod demo;
mod gateway_cli;
mod logs;
mod notify_logs;
mod operator_cli;
mod orders_cli;
