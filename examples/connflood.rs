//! Issue 19's connection attacks, against a payhook on loopback only
//! (`scripts/conn-attack.sh` runs them and reads the service's peak RSS).
//!
//! - `--attack stall` (finding 3): each connection sends a request line of
//!   `--line-bytes`, `--headers` headers of `--header-bytes` and all but one
//!   byte of a `--body-bytes` body, then waits (`--hold-s`, inside the
//!   service's 10 s time-out).
//! - `--attack keepalive` (finding 4): each connection sends `GET /healthz`
//!   every `--interval-s` and reconnects when closed.
//!
//! Connections come from `--sources` loopback addresses (127.0.0.10, .11, …);
//! meanwhile a fresh client from `--probe-from` asks `GET /healthz` on a new
//! connection once a second and its answer times are reported. Everything is
//! bounded: at most 4 000 connections, 64 sources, 60 s; one JSON line out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Clone, Copy, ValueEnum)]
enum Attack {
    Stall,
    Keepalive,
}

#[derive(Parser)]
struct Args {
    /// The public listener; a loopback address only.
    #[arg(long)]
    target: SocketAddr,
    #[arg(long, value_enum)]
    attack: Attack,
    #[arg(long, default_value_t = 950)]
    connections: usize,
    #[arg(long, default_value_t = 1)]
    sources: u8,
    #[arg(long, default_value_t = 30_000)]
    line_bytes: usize,
    #[arg(long, default_value_t = 85)]
    headers: usize,
    #[arg(long, default_value_t = 1000)]
    header_bytes: usize,
    #[arg(long, default_value_t = 65_536)]
    body_bytes: usize,
    #[arg(long, default_value_t = 3.0)]
    interval_s: f64,
    #[arg(long, default_value_t = 8)]
    hold_s: u64,
    #[arg(long, default_value = "127.0.0.200")]
    probe_from: Ipv4Addr,
}

#[derive(Default)]
struct Tally {
    opened: AtomicUsize,
    failed_to_open: AtomicUsize,
    /// Closed by the server before the end (answered or not).
    closed: AtomicUsize,
    /// Of those, answered 503 (the per-address cap).
    refused_503: AtomicUsize,
    /// Of those, answered 431 (the head limit).
    rejected_431: AtomicUsize,
    answered: AtomicUsize,
    held_at_end: AtomicUsize,
}

async fn connect_from(ip: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
    socket.connect(target).await
}

fn source(args: &Args, n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + (n % args.sources as usize) as u8)
}

fn stall_request(args: &Args) -> Vec<u8> {
    let prefix = "POST /paysera/callback?q=";
    let fill = args
        .line_bytes
        .saturating_sub(prefix.len() + " HTTP/1.1".len());
    let mut head = format!(
        "{prefix}{} HTTP/1.1\r\nHost: payhook\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        "a".repeat(fill),
        args.body_bytes
    );
    for n in 0..args.headers {
        let name = format!("X-Filler-{n}: ");
        let value = "b".repeat(args.header_bytes.saturating_sub(name.len() + 2));
        head.push_str(&format!("{name}{value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.resize(request.len() + args.body_bytes.saturating_sub(1), b'c');
    request
}

/// Reads what the server sends until `until`; true if it closed the connection.
async fn watch(stream: &mut TcpStream, until: Instant, tally: &Tally) -> bool {
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => {
                if first.starts_with(b"HTTP/1.1 503") {
                    tally.refused_503.fetch_add(1, Ordering::Relaxed);
                } else if first.starts_with(b"HTTP/1.1 431") {
                    tally.rejected_431.fetch_add(1, Ordering::Relaxed);
                }
                return true;
            }
            Ok(Ok(n)) if first.len() < 16 => first.extend_from_slice(&buf[..n]),
            Ok(Ok(_)) => {}
        }
    }
}

async fn stall(args: Arc<Args>, n: usize, tally: Arc<Tally>, until: Instant) {
    let Ok(mut stream) = connect_from(source(&args, n), args.target).await else {
        tally.failed_to_open.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    let _ = stream.write_all(&stall_request(&args)).await;
    if watch(&mut stream, until, &tally).await {
        tally.closed.fetch_add(1, Ordering::Relaxed);
    } else {
        tally.held_at_end.fetch_add(1, Ordering::Relaxed);
    }
}

/// One `GET /healthz` on `stream`: whether a whole answer came back.
async fn ask(stream: &mut TcpStream, close: bool) -> Option<Vec<u8>> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: payhook\r\n{connection}\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return Some(received);
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn keepalive(args: Arc<Args>, n: usize, tally: Arc<Tally>, until: Instant) {
    let interval = Duration::from_secs_f64(args.interval_s);
    let mut first = true;
    while Instant::now() < until {
        let Ok(mut stream) = connect_from(source(&args, n), args.target).await else {
            tally.failed_to_open.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if first {
            tally.opened.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, ask(&mut stream, false)).await {
                Err(_) => {
                    tally.held_at_end.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Some(answer)) if answer.starts_with(b"HTTP/1.1 200") => {
                    tally.answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(answer) => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    if answer.is_some_and(|a| a.starts_with(b"HTTP/1.1 503")) {
                        tally.refused_503.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
            if Instant::now() + interval >= until {
                tally.held_at_end.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(interval).await;
        }
        // Closed: reconnect, as an attacker would, a little later.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh client's answer time, in ms (`None`: no answer within 10 s).
async fn probe(from: Ipv4Addr, target: SocketAddr) -> Option<f64> {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = connect_from(from, target).await.ok()?;
        ask(&mut stream, true).await
    })
    .await
    .ok()
    .flatten()?;
    answer
        .starts_with(b"HTTP/1.1 200")
        .then(|| started.elapsed().as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.target.ip().is_loopback() || !args.probe_from.is_loopback() {
        bail!("--target and --probe-from must be loopback addresses");
    }
    if args.connections > 4000 || args.sources == 0 || args.sources > 64 || args.hold_s > 60 {
        bail!("bounded: --connections <= 4000, --sources 1..=64, --hold-s <= 60");
    }
    let args = Arc::new(args);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(args.hold_s);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..args.connections {
        let (args, tally) = (args.clone(), tally.clone());
        match args.attack {
            Attack::Stall => tasks.spawn(stall(args, n, tally, until)),
            Attack::Keepalive => tasks.spawn(keepalive(args, n, tally, until)),
        };
        // Opened steadily, not all in one burst at the listen backlog.
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let opening = started.elapsed();
    // The probe starts once every connection was started, and runs until the end.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut probes = Vec::new();
    while Instant::now() + Duration::from_secs(1) < until {
        let at = Instant::now();
        probes.push(probe(args.probe_from, args.target).await);
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(at.elapsed())).await;
    }
    tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .context("connections did not finish")?;
    let answered: Vec<f64> = probes.iter().flatten().copied().collect();
    let max = answered.iter().copied().fold(0.0, f64::max);
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "attack": match args.attack { Attack::Stall => "stall", Attack::Keepalive => "keepalive" },
            "connections": args.connections,
            "sources": args.sources,
            "opening_s": opening.as_secs_f64(),
            "opened": get(&tally.opened),
            "failed_to_open": get(&tally.failed_to_open),
            "closed_by_server": get(&tally.closed),
            "answered_503": get(&tally.refused_503),
            "answered_431": get(&tally.rejected_431),
            "requests_answered": get(&tally.answered),
            "held_at_end": get(&tally.held_at_end),
            "probes": probes.len(),
            "probes_unanswered": probes.iter().filter(|p| p.is_none()).count(),
            "probe_max_ms": (max * 10.0).round() / 10.0,
            "probe_ms": answered.iter().map(|p| (p * 10.0).round() / 10.0).collect::<Vec<_>>(),
        })
    );
    Ok(())
}
