//! Test support: one module, included the same way by every test binary,
//!
//! ```ignore
//! #[path = "support/mod.rs"]     // tests/slow_clients.rs
//! #[path = "../support/mod.rs"]  // tests/{api,cli,protocol}/main.rs
//! mod support;
//! ```
//!
//! so there is one of each helper: one `free_port`, one `readyz`, one signer
//! and one `paid` callback, one PostgreSQL cluster manager. Each binary uses
//! only part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod cli;
pub mod fuzz_harness;
pub mod gateway;
pub mod gateway_vectors;
pub mod postgres;
pub mod proxy;
pub mod replication;
pub mod service;
pub mod smtp;
pub mod sqlite;
pub mod tcp;
pub mod vectors;
pub mod wait;
pub mod webdriver;

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

/// A loopback port nobody uses right now (the kernel's choice). Only free
/// until someone else binds it: prefer port 0 where the code under test
/// reports the port it got.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("cannot bind a loopback port: {err}"))
}

/// Whether an HTTP server answers on loopback `port`. A bare TCP connect is
/// not proof: `demo.rs` once ran `simulate` 0.7 s after a connect succeeded,
/// before the service had even provisioned its gateway. A connect to a port
/// nobody listens on succeeds, for one, when the kernel picks that port as
/// the ephemeral source port (the socket connects to itself).
pub fn listening(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    if stream.local_addr().ok() == stream.peer_addr().ok() {
        return false;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 7];
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: payhook\r\n\r\n")
        .and_then(|()| stream.read_exact(&mut head))
        .is_ok_and(|()| &head == b"HTTP/1.")
}

/// `GET {base}/readyz` on a new connection: the status and the body.
pub async fn readyz(base: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let response = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {base}/readyz: {err}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}
