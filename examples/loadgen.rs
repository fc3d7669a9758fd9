//! Load generator for payhook's callback endpoint (loopback only).
//!
//! Registers N orders through the admin API, pre-signs N distinct paid
//! callbacks the way the gateway's RSA path does (`data` + `ss2`), then fires
//! them with a fixed number of requests in flight over keep-alive connections
//! and prints one line of JSON: throughput, per-request latency percentiles,
//! non-OK answers (must be 0) and, optionally, the CPU time of watched
//! processes and the peak RSS of the service.
//!
//!     cargo run --release --example loadgen -- --help
//!
//! `--rate R` paces instead: callback `i` is due `i / R` seconds after firing
//! begins (an open loop, as the gateway sends), at most `--concurrency` in
//! flight, and each latency counts from when the callback was due, so a
//! service falling behind shows it in its percentiles instead of slowing the
//! sender down (no coordinated omission).
//!
//! `--dup 4` sends every callback 4 times at once (the gateway retrying while
//! the first delivery is still in flight); `--concurrency` then still counts
//! requests in flight, i.e. concurrency/4 callbacks at a time.
//!
//! Signing is the expensive part of a run (an RSA private-key operation per
//! callback, ~2 ms on one core), so `--signed FILE` keeps the signed queries;
//! a later run asking for at most as many callbacks (same prefix, project and
//! key) reads the first `--count` of them instead of signing again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use payhook::sim::{CallbackForm, GatewaySigner};
use serde_json::json;

/// Fields about the run that a signed-queries file must match to be reused.
const SIGNED_HEADER: &str = "# payhook-loadgen signed v1";
/// Hard bounds, whatever the arguments say.
const MAX_COUNT: usize = 1_000_000;
const MAX_CONCURRENCY: usize = 1024;
const MAX_DUP: usize = 16;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Fires pre-signed paid Paysera callbacks at a payhook on loopback and reports \
             throughput, latency and non-OK answers as one JSON line"
)]
struct Args {
    /// payhook's public listener (callbacks).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public: String,
    /// payhook's admin listener (order registration, checks).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    admin: String,
    /// The admin bearer token.
    #[arg(long, env = "PAYHOOK_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The gateway's private key (the test key pair's private.pem).
    #[arg(long, default_value = "tests/vectors/current/private.pem")]
    key: PathBuf,
    /// The project the callbacks are for.
    #[arg(long, default_value_t = 123)]
    project: u64,
    /// The project password (only used by ss1/encrypted forms; kept for completeness).
    #[arg(long, default_value = "pass-1f2e3d")]
    password: String,
    /// Distinct paid callbacks (one order each).
    #[arg(long, default_value_t = 5000)]
    count: usize,
    /// Requests in flight at any time (with `--rate`: at most).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Paced: this many callbacks per second, on schedule, instead of as
    /// fast as `--concurrency` allows.
    #[arg(long)]
    rate: Option<f64>,
    /// Leave out of the latency figures the requests sent in the first this
    /// many seconds (connections and the service's pool still opening); they
    /// are still sent, answered and checked.
    #[arg(long, default_value_t = 0.0)]
    warmup_s: f64,
    /// Send each callback this many times at once (1: all distinct).
    #[arg(long, default_value_t = 1)]
    dup: usize,
    /// Order ids are `<prefix>-<n>` (at most 40 bytes in all).
    #[arg(long, default_value = "lg")]
    prefix: String,
    /// Keep the signed queries here and reuse them when the file matches.
    #[arg(long)]
    signed: Option<PathBuf>,
    /// Only sign (into --signed) and exit.
    #[arg(long)]
    sign_only: bool,
    /// Do not register the orders (they are already registered).
    #[arg(long)]
    no_register: bool,
    /// Stop firing after this many seconds (the report says `truncated`).
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Afterwards, look this many orders up through the admin API and check
    /// that each is paid, fulfilled once, with `dup` callbacks stored.
    #[arg(long, default_value_t = 20)]
    check: usize,
    /// A label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Worker threads of the load generator's runtime (it shares the machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Processes whose CPU time over the firing phase is reported, as
    /// NAME=PID; the PID's children are counted too (e.g. a postmaster's backends).
    #[arg(long = "watch", value_parser = parse_watch)]
    watch: Vec<(String, u32)>,
    /// A process whose peak RSS (VmHWM) is reported after the run.
    #[arg(long)]
    rss_pid: Option<u32>,
}

fn parse_watch(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {s:?}"))?;
    let pid = pid.parse().map_err(|_| format!("{pid:?} is not a pid"))?;
    Ok((name.to_string(), pid))
}

/// One pre-signed callback.
struct Signed {
    orderid: String,
    amount: i64,
    query: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 || args.count > MAX_COUNT {
        bail!("--count must be 1..={MAX_COUNT}");
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        bail!("--concurrency must be 1..={MAX_CONCURRENCY}");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of callbacks per second");
    }
    if args.dup == 0 || args.dup > MAX_DUP {
        bail!("--dup must be 1..={MAX_DUP}");
    }
    if args.prefix.len() + 1 + MAX_COUNT.to_string().len() > 40 || args.prefix.is_empty() {
        bail!("--prefix must be 1..=32 bytes (order ids are at most 40)");
    }
    if !args
        .prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("--prefix: letters, digits, - and _ only");
    }
    if !args.sign_only {
        loopback_only(&args.public)?;
        loopback_only(&args.admin)?;
    }

    let sign_started = Instant::now();
    let (signed, reused) = load_or_sign(&args)?;
    let sign_s = sign_started.elapsed().as_secs_f64();
    if args.sign_only {
        eprintln!(
            "loadgen: {} signed callbacks {} in {sign_s:.1}s",
            signed.len(),
            if reused { "already there" } else { "written" }
        );
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.clamp(1, 8))
        .enable_all()
        .build()?;
    let summary = runtime.block_on(run(&args, signed, sign_s, reused))?;
    println!("{summary}");
    // Every answer must be OK and every checked order right: anything else
    // is a failed run, whatever the throughput.
    let bad_checks = summary["check"]["bad"].as_array().map_or(0, Vec::len);
    if summary["non_ok"].as_u64() != Some(0) || bad_checks > 0 {
        eprintln!("loadgen: non-OK answers or wrong orders (see non_ok_kinds and check)");
        std::process::exit(1);
    }
    Ok(())
}

fn loopback_only(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() != "http" || !loopback {
        bail!("{url}: only http:// on loopback (127.0.0.1, ::1, localhost) is allowed");
    }
    Ok(())
}

fn fields(project: u64, orderid: &str, amount: i64, requestid: usize) -> Vec<(String, String)> {
    let amount = amount.to_string();
    let project = project.to_string();
    let requestid = (900_000_000 + requestid).to_string();
    [
        ("projectid", project.as_str()),
        ("orderid", orderid),
        ("lang", "LIT"),
        ("amount", &amount),
        ("currency", "EUR"),
        ("payment", "hanza"),
        ("country", "LT"),
        ("status", "1"),
        ("test", "0"),
        ("payamount", &amount),
        ("paycurrency", "EUR"),
        ("version", "1.6"),
        ("requestid", &requestid),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn header(args: &Args) -> String {
    format!(
        "{SIGNED_HEADER} project={} prefix={} key={}",
        args.project,
        args.prefix,
        args.key.display()
    )
}

fn load_or_sign(args: &Args) -> anyhow::Result<(Vec<Signed>, bool)> {
    if let Some(path) = &args.signed {
        if let Some(signed) = read_signed(path, &header(args), args.count)? {
            return Ok((signed, true));
        }
    }
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read the gateway key {}", args.key.display()))?;
    let signer = GatewaySigner::from_pem(&pem, &args.password)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = args.count.div_ceil(threads);
    let mut signed: Vec<Signed> = Vec::with_capacity(args.count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let signer = &signer;
                scope.spawn(move || {
                    let end = ((t + 1) * chunk).min(args.count);
                    (t * chunk..end)
                        .map(|i| {
                            let orderid = format!("{}-{i}", args.prefix);
                            // Amounts differ so that no two callbacks' data match.
                            let amount = 1000 + (i % 9000) as i64;
                            let f = fields(args.project, &orderid, amount, i);
                            let pairs: Vec<(&str, &str)> =
                                f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                            let query = signer.callback_query(&pairs, CallbackForm::Ss2);
                            Signed {
                                orderid,
                                amount,
                                query,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            signed.extend(h.join().expect("signing thread"));
        }
    });
    if let Some(path) = &args.signed {
        write_signed(path, &header(args), &signed)?;
    }
    Ok((signed, false))
}

fn read_signed(path: &Path, header: &str, count: usize) -> anyhow::Result<Option<Vec<Signed>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut lines = std::io::BufReader::new(file).lines();
    if lines.next().transpose()?.as_deref() != Some(header) {
        return Ok(None);
    }
    let mut signed = Vec::with_capacity(count);
    for line in lines.take(count) {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let (Some(orderid), Some(amount), Some(query)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        signed.push(Signed {
            orderid: orderid.to_string(),
            amount: amount.parse().context("signed file: amount")?,
            query: query.to_string(),
        });
    }
    // A shorter file is signed afresh (and replaced by the longer one).
    Ok((signed.len() == count).then_some(signed))
}

fn write_signed(path: &Path, header: &str, signed: &[Signed]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    let mut out = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    writeln!(out, "{header}")?;
    for s in signed {
        writeln!(out, "{}\t{}\t{}", s.orderid, s.amount, s.query)?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// What one request came to.
struct Sample {
    /// Sent this long after firing began.
    at_micros: u64,
    micros: u32,
    /// `None`: OK; `Some(label)`: anything else (status and body, or a transport error).
    failure: Option<String>,
}

async fn run(
    args: &Args,
    signed: Vec<Signed>,
    sign_s: f64,
    reused: bool,
) -> anyhow::Result<serde_json::Value> {
    let token = args
        .token
        .clone()
        .context("--token (or PAYHOOK_ADMIN_TOKEN) is required")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_CONCURRENCY)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?;
    let signed = Arc::new(signed);
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);

    // Registration: what the shop does before sending its customer to pay.
    let register_started = Instant::now();
    if !args.no_register {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, signed, next, token) =
                (client.clone(), signed.clone(), next.clone(), token.clone());
            let admin = args.admin.trim_end_matches('/').to_string();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = signed.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let response = client
                        .put(format!("{admin}/api/v1/orders/{}", s.orderid))
                        .bearer_auth(&token)
                        .json(&json!({"amount": s.amount, "currency": "EUR"}))
                        .send()
                        .await
                        .with_context(|| format!("register {}", s.orderid))?;
                    let status = response.status();
                    if !status.is_success() {
                        let body = response.text().await.unwrap_or_default();
                        bail!("register {}: {status} {body}", s.orderid);
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
    }
    let register_s = register_started.elapsed().as_secs_f64();

    // Firing: `groups` callbacks at a time, each sent `dup` times at once.
    let groups = (args.concurrency / args.dup).max(1);
    let in_flight = groups * args.dup;
    let next = Arc::new(AtomicUsize::new(0));
    let truncated = Arc::new(AtomicBool::new(false));
    let public = args.public.trim_end_matches('/').to_string();
    let watch_before = cpu_snapshot(&args.watch);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..groups {
        let (client, signed, next, truncated, public) = (
            client.clone(),
            signed.clone(),
            next.clone(),
            truncated.clone(),
            public.clone(),
        );
        let (dup, rate) = (args.dup, args.rate);
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<Sample> = Vec::new();
            loop {
                if Instant::now() >= deadline {
                    truncated.store(true, Ordering::Relaxed);
                    return samples;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = signed.get(i) else {
                    return samples;
                };
                let url = format!("{public}/paysera/callback?{}", s.query);
                let due = match rate {
                    Some(rate) => {
                        let due = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let sends = (0..dup).map(|_| fire(&client, &url, started, due));
                samples.extend(futures::future::join_all(sends).await);
            }
        }));
    }
    let mut samples = Vec::with_capacity(signed.len() * args.dup);
    for t in tasks {
        samples.extend(t.await?);
    }
    let wall = started.elapsed().as_secs_f64();
    let watch_after = cpu_snapshot(&args.watch);
    let machine = machine_cpu_delta(&watch_before, &watch_after);

    let requests = samples.len();
    let callbacks = requests / args.dup;
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for s in &samples {
        if let Some(f) = &s.failure {
            *failures.entry(f.clone()).or_default() += 1;
        }
    }
    let non_ok: usize = failures.values().sum();
    // The slowest requests and when they were sent: stalls show as clusters.
    let warmup_micros = (args.warmup_s.max(0.0) * 1e6) as u64;
    let timed: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_micros >= warmup_micros)
        .collect();
    let mut by_time = timed.clone();
    by_time.sort_unstable_by_key(|s| std::cmp::Reverse(s.micros));
    let slowest: Vec<serde_json::Value> = by_time
        .iter()
        .take(5)
        .map(|s| json!({"sent_at_ms": s.at_micros / 1000, "ms": round2(s.micros as f64 / 1000.0)}))
        .collect();
    let mut micros: Vec<u32> = timed.iter().map(|s| s.micros).collect();
    micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if micros.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * micros.len() as f64).ceil() as usize;
        micros[rank.clamp(1, micros.len()) - 1] as f64 / 1000.0
    };
    let mean = if micros.is_empty() {
        0.0
    } else {
        micros.iter().map(|&m| m as f64).sum::<f64>() / micros.len() as f64 / 1000.0
    };

    let check = check_orders(args, &client, &token, &signed, callbacks).await;

    let mut cpu = serde_json::Map::new();
    let loadgen_ticks = self_ticks_delta(&watch_before, &watch_after);
    let hz = clock_ticks();
    cpu.insert("loadgen".into(), json!(round2(loadgen_ticks as f64 / hz)));
    for (name, _) in &args.watch {
        let t = watch_after.named.get(name).copied().unwrap_or(0)
            - watch_before.named.get(name).copied().unwrap_or(0);
        cpu.insert(name.clone(), json!(round2(t as f64 / hz)));
    }
    if let Some((busy, total)) = machine {
        let ours: f64 = cpu.values().filter_map(|v| v.as_f64()).sum();
        let busy_s = busy as f64 / hz;
        cpu.insert("other".into(), json!(round2((busy_s - ours).max(0.0))));
        cpu.insert("machine_busy".into(), json!(round2(busy_s)));
        cpu.insert("machine_total".into(), json!(round2(total as f64 / hz)));
    }

    Ok(json!({
        "label": args.label,
        "callbacks": callbacks,
        "dup": args.dup,
        "requests": requests,
        "in_flight": in_flight,
        "rate": args.rate,
        "latency_excludes_first_s": args.warmup_s,
        "latency_samples": micros.len(),
        "wall_s": round3(wall),
        "callbacks_per_s": round1(callbacks as f64 / wall),
        "requests_per_s": round1(requests as f64 / wall),
        "latency_ms": {
            "p50": round2(pct(50.0)),
            "p90": round2(pct(90.0)),
            "p99": round2(pct(99.0)),
            "max": round2(pct(100.0)),
            "mean": round2(mean),
        },
        "slowest": slowest,
        "non_ok": non_ok,
        "non_ok_kinds": failures,
        "truncated": truncated.load(Ordering::Relaxed),
        "register_s": round3(register_s),
        "sign_s": round3(sign_s),
        "signed_reused": reused,
        "check": check,
        "cpu_s": cpu,
        "peak_rss_kib": args.rss_pid.and_then(vm_hwm_kib),
    }))
}

/// One request, timed from `due` (when it was meant to be sent).
async fn fire(client: &reqwest::Client, url: &str, origin: Instant, due: Instant) -> Sample {
    let t = due;
    let failure = match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) if status == 200 && body == "OK" => None,
                Ok(body) => Some(format!(
                    "{status} {}",
                    body.chars().take(80).collect::<String>()
                )),
                Err(e) => Some(format!("{status} body: {e}")),
            }
        }
        Err(e) => Some(format!("transport: {}", e.without_url())),
    };
    Sample {
        at_micros: t.duration_since(origin).as_micros() as u64,
        micros: t.elapsed().as_micros().min(u32::MAX as u128) as u32,
        failure,
    }
}

/// Looks a spread of orders up: paid, fulfilled once, `dup` callbacks stored.
async fn check_orders(
    args: &Args,
    client: &reqwest::Client,
    token: &str,
    signed: &[Signed],
    fired: usize,
) -> serde_json::Value {
    let n = args.check.min(fired);
    if n == 0 {
        return json!(null);
    }
    let admin = args.admin.trim_end_matches('/');
    let mut bad: Vec<String> = Vec::new();
    for k in 0..n {
        let s = &signed[k * fired / n];
        let order: serde_json::Value = match client
            .get(format!("{admin}/api/v1/orders/{}", s.orderid))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => {
                bad.push(format!("{}: {e}", s.orderid));
                continue;
            }
        };
        let outcomes: Vec<&str> = order["callbacks"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["outcome"].as_str()).collect())
            .unwrap_or_default();
        let fulfilled = outcomes.iter().filter(|o| **o == "fulfilled").count();
        let duplicate = outcomes.iter().filter(|o| **o == "duplicate").count();
        if order["state"] != "paid"
            || fulfilled != 1
            || duplicate != args.dup - 1
            || outcomes.len() != args.dup
        {
            bad.push(format!(
                "{}: state {} outcomes {outcomes:?}",
                s.orderid, order["state"]
            ));
        }
    }
    json!({ "orders": n, "bad": bad })
}

struct CpuSnapshot {
    named: BTreeMap<String, u64>,
    own: u64,
    machine: Option<(u64, u64)>,
}

fn cpu_snapshot(watch: &[(String, u32)]) -> CpuSnapshot {
    let mut named = BTreeMap::new();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let all = all_stats();
    for (pid, stat) in &all {
        children.entry(stat.ppid).or_default().push(*pid);
    }
    for (name, pid) in watch {
        // The process, its live descendants, and the descendants it has
        // already reaped (a postmaster's backends that have exited).
        let mut sum = all.get(pid).map(|s| s.reaped_ticks).unwrap_or(0);
        let mut stack = vec![*pid];
        while let Some(p) = stack.pop() {
            sum += all.get(&p).map(|s| s.ticks).unwrap_or(0);
            if let Some(c) = children.get(&p) {
                stack.extend(c);
            }
        }
        *named.entry(name.clone()).or_default() += sum;
    }
    CpuSnapshot {
        named,
        own: stat_of("/proc/self/stat").map(|s| s.ticks).unwrap_or(0),
        machine: machine_ticks(),
    }
}

fn self_ticks_delta(a: &CpuSnapshot, b: &CpuSnapshot) -> u64 {
    b.own.saturating_sub(a.own)
}

fn machine_cpu_delta(a: &CpuSnapshot, b: &CpuSnapshot) -> Option<(u64, u64)> {
    let ((busy_a, total_a), (busy_b, total_b)) = (a.machine?, b.machine?);
    Some((busy_b - busy_a, total_b - total_a))
}

struct ProcStat {
    ppid: u32,
    /// utime + stime
    ticks: u64,
    /// cutime + cstime: children waited for
    reaped_ticks: u64,
}

fn all_stats() -> BTreeMap<u32, ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((pid, stat_of(&format!("/proc/{pid}/stat"))?))
        })
        .collect()
}

fn stat_of(path: &str) -> Option<ProcStat> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    Some(ProcStat {
        ppid: *f.get(1)? as u32,
        ticks: f.get(11)? + f.get(12)?,
        reaped_ticks: f.get(13)? + f.get(14)?,
    })
}

/// (busy, total) ticks of the whole machine from /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux configuration that matters here; the
    // script cross-checks with `getconf CLK_TCK`.
    std::env::var("LOADGEN_CLK_TCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
