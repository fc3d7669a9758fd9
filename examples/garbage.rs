//! Sends unauthenticated garbage to payhook's callback endpoint on loopback:
//! `--count` POSTs of `--size` random bytes each (NUL bytes and invalid UTF-8
//! included, declared as a form), `--concurrency` at a time, and prints one
//! JSON line: how many were answered with which status, and how long it took.
//!
//!     cargo run --release --example garbage -- --help
//!
//! Used by `scripts/garbage-growth.sh` to measure how much such traffic makes
//! the database grow (docs/security-storage.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use rand::{Rng, SeedableRng};

const MAX_COUNT: usize = 100_000;
const MAX_SIZE: usize = 64 * 1024;
const MAX_CONCURRENCY: usize = 64;

#[derive(Debug, Parser)]
#[command(
    name = "garbage",
    about = "POSTs random bytes to a payhook callback endpoint on loopback and reports the answers"
)]
struct Args {
    /// The callback endpoint (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080/paysera/callback")]
    url: String,
    /// Requests to send.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Bytes per request body (at most 64 KiB, payhook's limit).
    #[arg(long, default_value_t = MAX_SIZE)]
    size: usize,
    /// Requests in flight at any time.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seed of the random bodies (the same seed sends the same bytes).
    #[arg(long, default_value_t = 8)]
    seed: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 || args.count > MAX_COUNT {
        bail!("--count must be 1..={MAX_COUNT}");
    }
    if args.size == 0 || args.size > MAX_SIZE {
        bail!("--size must be 1..={MAX_SIZE}");
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        bail!("--concurrency must be 1..={MAX_CONCURRENCY}");
    }
    let url = reqwest::Url::parse(&args.url).context("--url")?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("--url must point at loopback (127.0.0.1, ::1 or localhost)");
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        let (count, size, seed) = (args.count, args.size, args.seed);
        workers.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return statuses;
                }
                let mut rng = rand::rngs::StdRng::seed_from_u64(
                    seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
                );
                let mut body = vec![0u8; size];
                rng.fill(&mut body[..]);
                let status = match client
                    .post(url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(e) => format!("error: {}", e.without_url()),
                };
                *statuses.entry(status).or_default() += 1;
            }
        }));
    }
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        for (status, n) in worker.await? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "sent": args.count,
            "bytes_each": args.size,
            "concurrency": args.concurrency,
            "seconds": (seconds * 100.0).round() / 100.0,
            "per_second": (args.count as f64 / seconds).round(),
            "statuses": statuses,
        })
    );
    Ok(())
}
