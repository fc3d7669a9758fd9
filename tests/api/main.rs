//! The callback service over HTTP, on real PostgreSQL and on SQLite.

#[path = "../support/mod.rs"]
mod support;

mod concurrency;
mod hardening;
mod helpers;
mod hostile_storage;
mod operations;
mod outage;
mod outcomes;
mod vectors;
