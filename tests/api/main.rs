//! The callback service over HTTP, on real PostgreSQL and on SQLite.

#[path = "../support/mod.rs"]
mod support;

mod backends_agree;
mod batching;
mod checkout;
mod cli_output;
mod concurrency;
mod console;
mod contract;
mod db_faults;
mod failover;
mod feed;
mod forgery;
mod gateways;
mod hardening;
mod helpers;
mod hostile_storage;
mod notify;
mod operations;
mod operator_auth;
mod order_edges;
mod outage;
mod outcomes;
mod pay_contract;
mod privacy;
mod read_paths;
mod replays;
mod replication;
mod returns;
mod round_trips;
mod vectors;
