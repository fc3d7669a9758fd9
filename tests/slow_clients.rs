//! Slow or idle clients cannot hold the service: a body that
//! has not arrived within `PAYHOOK_REQUEST_TIMEOUT` gets 408 and its connection
//! is closed, and `PAYHOOK_MAX_CONNECTIONS` caps what an instance holds.
//! The service runs with its defaults, except what a test must set to run.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use payhook::config::Settings;
use payhook::startup::{Application, ConnectionLimits, StopHandle};
use support::gateway::{paid_fields, sign, CallbackForm, PASSWORD};
use support::{tcp, vectors, wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const ADMIN_TOKEN: &str = "slow-clients-admin-token-0123";
/// What `PAYHOOK_REQUEST_TIMEOUT` defaults to.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Scheduling slack on a loaded 2-core machine; the bound itself is the timeout.
const MARGIN: Duration = Duration::from_secs(2);

struct Service {
    public: String,
    admin: String,
    limits: ConnectionLimits,
    stop: StopHandle,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Only what must be set for a real (non-demo) start: the project, the test
    /// gateway key, the admin token, free ports and a fresh data directory.
    async fn start(overrides: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let key = vectors::vectors_dir().join("current/public.pem");
        let mut env: HashMap<String, String> = [
            ("PAYSERA_PROJECT_ID", "123".to_string()),
            ("PAYSERA_PROJECT_PASSWORD", PASSWORD.to_string()),
            ("PAYSERA_PUBLIC_KEY_FILE", key.display().to_string()),
            ("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("PAYHOOK_BIND", "127.0.0.1:0".to_string()),
            ("PAYHOOK_ADMIN_BIND", "127.0.0.1:0".to_string()),
            ("PAYHOOK_DATA_DIR", dir.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("settings");
        let app = Application::build(settings).await.expect("service starts");
        let service = Service {
            public: format!("127.0.0.1:{}", app.port()),
            admin: format!("127.0.0.1:{}", app.admin_port()),
            limits: app.connection_limits(),
            stop: app.stop_handle(),
            _dir: dir,
        };
        tokio::spawn(app.run_until_stopped());
        service
    }

    async fn register(&self, client: &reqwest::Client, orderid: &str) {
        let response = client
            .put(format!("http://{}/api/v1/orders/{orderid}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"amount": 1250, "currency": "EUR"}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

/// A paid callback for `orderid`, signed by the shared test gateway key.
fn paid_callback(orderid: &str) -> String {
    sign(
        &paid_fields(orderid, "1250", "EUR"),
        CallbackForm::AllSignatures,
    )
}

/// Raises the soft file-descriptor limit to `needed`, or fails saying why.
fn ensure_fd_limit(needed: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            assert!(
                limit.rlim_max >= needed,
                "this test opens {needed} file descriptors but the hard limit is {}; \
                 raise it (ulimit -Hn) and run again",
                limit.rlim_max
            );
            limit.rlim_cur = needed;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// Sends a request head announcing a 1000-byte body, then one byte of it.
async fn stall(addr: &str, path: &str, content_type: &str) -> TcpStream {
    stall_framed("127.0.0.1", addr, path, content_type, false).await
}

/// The same from the loopback address `from`, and with `chunked`, as
/// `Transfer-Encoding: chunked`: a 1000-byte chunk, one byte sent.
async fn stall_framed(
    from: &str,
    addr: &str,
    path: &str,
    content_type: &str,
    chunked: bool,
) -> TcpStream {
    let mut stream = connect_from(from, addr).await;
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n\r\n3e8\r\na"
    } else {
        "Content-Length: 1000\r\n\r\na"
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: payhook\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: {content_type}\r\n{framing}"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads until the server closes the connection; `None` if it is still open at `by`.
async fn closed_by(mut stream: TcpStream, by: Instant) -> Option<(Instant, String)> {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(by, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((Instant::now(), String::from_utf8_lossy(&received).into()))
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_do_not_hold_the_service() {
    const STALLED: usize = 300;
    // Each stalled connection is two descriptors in this process (client and
    // server side), plus the service's own files and the runtime's.
    ensure_fd_limit((2 * STALLED + 512) as libc::rlim_t);
    let service = Service::start(&[]).await;
    assert!(
        service.limits.public_total() > STALLED,
        "{:?}",
        service.limits
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    service.register(&client, "SLOW-1").await;

    let started = Instant::now();
    let mut stalled = Vec::new();
    for n in 0..STALLED {
        let form = "application/x-www-form-urlencoded";
        let chunked = n % 10 == 0;
        // From 8 addresses: one may hold only PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS.
        let from = format!("127.0.0.{}", 10 + n % 8);
        let path = "/paysera/callback";
        stalled.push(stall_framed(&from, &service.public, path, form, chunked).await);
    }
    let admin_stalled = stall(&service.admin, "/api/v1/payments", "application/json").await;
    let all_sent = Instant::now();
    assert!(
        all_sent - started < Duration::from_secs(3),
        "opening the stalled connections took {:?}",
        all_sent - started
    );
    // The service takes them all in before the genuine callback.
    all_read_by_service(stalled.iter().chain([&admin_stalled])).await;

    let sent = Instant::now();
    let response = client
        .post(format!("http://{}/paysera/callback", service.public))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(paid_callback("SLOW-1"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    let took = sent.elapsed();
    assert_eq!((status.as_u16(), body.as_str()), (200, "OK"));
    assert!(
        took < Duration::from_secs(1),
        "genuine callback took {took:?}"
    );
    assert!(
        Instant::now() < started + DEFAULT_TIMEOUT,
        "the stalled connections were still open when it was answered"
    );

    // Every stalled connection is answered 408 and closed by the server, within
    // the timeout of when it was opened (plus scheduling slack).
    let by = all_sent + DEFAULT_TIMEOUT + MARGIN;
    let results = futures::future::join_all(stalled.into_iter().map(|s| closed_by(s, by))).await;
    let mut open = 0;
    for result in &results {
        match result {
            None => open += 1,
            Some((at, answer)) => {
                assert!(
                    answer.starts_with("HTTP/1.1 408"),
                    "stalled connection got {answer:?}"
                );
                assert!(
                    *at >= started + DEFAULT_TIMEOUT - Duration::from_millis(100),
                    "closed after {:?}, before the default timeout",
                    *at - started
                );
            }
        }
    }
    assert_eq!(
        open, 0,
        "{open} of {STALLED} stalled connections still open"
    );

    let (_, answer) = closed_by(admin_stalled, by)
        .await
        .expect("the admin listener closes a stalled body too");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"error\""), "{answer:?}");

    // The service is still fine afterwards.
    let health = client
        .get(format!("http://{}/healthz", service.public))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickling_past_the_timeout_gets_408() {
    let service = Service::start(&[("PAYHOOK_REQUEST_TIMEOUT", "1s")]).await;
    let mut stream = stall(
        &service.public,
        "/paysera/callback",
        "application/x-www-form-urlencoded",
    )
    .await;
    let started = Instant::now();
    // One byte every 200 ms: never idle for long, never complete in time.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b"a").await.is_err() {
                break;
            }
        }
        stream
    };
    let stream = trickle.await;
    let (at, answer) = closed_by(stream, started + Duration::from_secs(1) + MARGIN)
        .await
        .expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        at - started >= Duration::from_millis(900),
        "{:?}",
        at - started
    );
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_until_stalled_clients_are_dropped() {
    let timeout = Duration::from_secs(2);
    let service = Service::start(&[
        ("PAYHOOK_MAX_CONNECTIONS", "40"),
        ("PAYHOOK_REQUEST_TIMEOUT", "2s"),
    ])
    .await;
    let limits = service.limits;
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(limits, ConnectionLimits::split(40, parallelism));
    assert!(limits.public_total() + limits.admin <= 40, "{limits:?}");

    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..limits.public_total() {
        let form = "application/x-www-form-urlencoded";
        stalled.push(stall(&service.public, "/paysera/callback", form).await);
    }
    all_read_by_service(&stalled).await;

    // The instance is full: one more connection waits in the backlog...
    let mut extra = TcpStream::connect(&service.public).await.unwrap();
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: payhook\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(800), extra.read(&mut buf)).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");
    // ...while the admin listener, with its own share, still answers.
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", service.admin))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    // Once the stalled clients are dropped at the timeout, it is served.
    let (_, answer) = closed_by(extra, started + timeout + MARGIN + Duration::from_secs(1))
        .await
        .expect("served once the stalled connections were closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    for s in stalled {
        let (_, answer) = closed_by(s, started + timeout + MARGIN)
            .await
            .expect("closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_nobody_reads_closes_the_connection_at_once() {
    let service = Service::start(&[]).await;
    for head in [
        "GET /healthz HTTP/1.1\r\nHost: payhook\r\nContent-Length: 1000\r\n\r\na",
        "GET /healthz HTTP/1.1\r\nHost: payhook\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\na",
    ] {
        let started = Instant::now();
        let stream = TcpStream::connect(&service.public).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        write.write_all(head.as_bytes()).await.unwrap();
        // The client keeps sending a byte every 100 ms, as long as it can.
        let trickle = tokio::spawn(async move {
            while write.write_all(b"a").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        // Answered at once; actix then lingers up to its 1 s disconnect
        // timeout, never for as long as the client keeps sending.
        let by = started + Duration::from_secs(1) + MARGIN;
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(by, read.read(&mut buf)).await {
                Err(_) => panic!("still open: {head:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            }
        }
        trickle.abort();
        let answer = String::from_utf8_lossy(&received);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_head_is_closed_within_the_same_timeout() {
    // actix's own head timer (5 s by default) follows PAYHOOK_REQUEST_TIMEOUT.
    let service = Service::start(&[("PAYHOOK_REQUEST_TIMEOUT", "1s")]).await;
    for addr in [&service.public, &service.admin] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr.as_str()).await.unwrap();
        stream
            .write_all(b"POST /paysera/callback HTTP/1.1\r\nHost: payhook\r\n")
            .await
            .unwrap();
        let (at, _) = closed_by(stream, started + Duration::from_secs(1) + MARGIN)
            .await
            .unwrap_or_else(|| panic!("{addr}: a stalled head kept its connection"));
        // actix's clock for this timer is cached for 500 ms: it may fire early.
        assert!(
            at - started >= Duration::from_millis(400),
            "{:?}",
            at - started
        );
    }
    service.stop.stop().await;
}

/// A connection from `ip` (any of 127.0.0.0/8 is loopback on Linux).
async fn connect_from(ip: &str, addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{ip}:0").parse().unwrap())
        .expect("bind the client to a loopback address");
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// Sends `GET path` and reads one answer: its head (lower-cased) and body.
/// `None` if the server closed the connection (or reset it) instead.
async fn get(stream: &mut TcpStream, path: &str) -> Option<(String, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: payhook\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_answer(stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let by = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if received.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]);
                return Some((head, body.into()));
            }
        }
        match tokio::time::timeout_at(by, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "no answer within 5 s: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// The client's and the service's address of `stream`.
fn ends(stream: &TcpStream) -> (std::net::SocketAddr, std::net::SocketAddr) {
    (stream.local_addr().unwrap(), stream.peer_addr().unwrap())
}

/// Returns once the service has read everything sent on `streams`.
async fn all_read_by_service<'a>(streams: impl IntoIterator<Item = &'a TcpStream>) {
    let ends: Vec<_> = streams.into_iter().map(ends).collect();
    wait::until(
        "the service read every request",
        Duration::from_secs(10),
        || {
            let table = tcp::Table::read();
            ends.iter()
                .all(|&(client, server)| table.read_everything(client, server))
        },
    )
    .await;
}

/// Whether the server closes `stream` within 5 s, whatever it sends first.
async fn closed_soon(stream: TcpStream) -> Option<String> {
    closed_by(stream, Instant::now() + Duration::from_secs(5))
        .await
        .map(|(_, answer)| answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    // What PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS defaults to.
    const PER_ADDRESS: usize = 64;
    const EXTRA: usize = 16;
    ensure_fd_limit((4 * (PER_ADDRESS + EXTRA) + 512) as libc::rlim_t);
    let service = Service::start(&[]).await;

    // Keep-alive holders from one address, each answered once and kept open.
    let mut held = Vec::new();
    for _ in 0..PER_ADDRESS {
        let mut stream = connect_from("127.0.0.1", &service.public).await;
        let (head, _) = get(&mut stream, "/healthz")
            .await
            .expect("a holder is served");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        held.push(stream);
    }
    // Beyond the cap, the same address is refused and closed at once.
    let mut refused = Vec::new();
    for _ in 0..EXTRA {
        refused.push(connect_from("127.0.0.1", &service.public).await);
    }
    let answers = futures::future::join_all(refused.into_iter().map(closed_soon)).await;
    for answer in &answers {
        let answer = answer
            .as_deref()
            .expect("a connection over the per-address cap is closed within 5 s");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{answer:?}"
        );
    }

    // Another address is answered promptly meanwhile.
    let started = Instant::now();
    let mut fresh = connect_from("127.0.0.2", &service.public).await;
    let (head, _) = get(&mut fresh, "/healthz")
        .await
        .expect("another address is served");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The holders still work, and once they go, their address may connect again.
    let (head, _) = get(&mut held[0], "/healthz").await.expect("still served");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let ends: Vec<_> = held.iter().map(ends).collect();
    drop(held);
    wait::until(
        "the service closed the holders",
        Duration::from_secs(10),
        || {
            let table = tcp::Table::read();
            ends.iter()
                .all(|&(client, server)| table.closed_by_server(client, server))
        },
    )
    .await;
    let mut again = connect_from("127.0.0.1", &service.public).await;
    let (head, _) = get(&mut again, "/healthz").await.expect("served again");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_not_capped_per_address() {
    const CONNECTIONS: usize = 24;
    ensure_fd_limit((4 * CONNECTIONS + 512) as libc::rlim_t);
    let service = Service::start(&[
        ("PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS", "4"),
        ("PAYHOOK_TRUSTED_PROXIES", "127.0.0.3, 10.0.0.0/8"),
    ])
    .await;
    let mut held = Vec::new();
    for n in 0..CONNECTIONS {
        let mut stream = connect_from("127.0.0.3", &service.public).await;
        let answer = get(&mut stream, "/healthz").await;
        assert!(
            answer.is_some_and(|(head, _)| head.starts_with("http/1.1 200")),
            "proxy connection {n} refused"
        );
        held.push(stream);
    }
    // Any other address still has its cap of 4.
    let mut others = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from("127.0.0.4", &service.public).await;
        assert!(get(&mut stream, "/healthz").await.is_some());
        others.push(stream);
    }
    let fifth = connect_from("127.0.0.4", &service.public).await;
    let answer = closed_soon(fifth).await.expect("the fifth is closed");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer:?}"
    );
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_is_closed_after_its_age_or_requests() {
    let service = Service::start(&[
        ("PAYHOOK_CONNECTION_MAX_REQUESTS", "10"),
        ("PAYHOOK_CONNECTION_MAX_AGE", "1s"),
    ])
    .await;

    // Ten quick requests: the tenth answer says close, and the server closes.
    let mut stream = connect_from("127.0.0.1", &service.public).await;
    for n in 1..=10 {
        let (head, _) = get(&mut stream, "/healthz")
            .await
            .unwrap_or_else(|| panic!("request {n} not answered"));
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(
            head.contains("connection: close"),
            n == 10,
            "request {n}: {head}"
        );
    }
    assert!(
        closed_soon(stream).await.is_some(),
        "still open after its last request"
    );

    // One request every 400 ms, as a holder does: the first answer after
    // 1 s of age closes the connection.
    let started = Instant::now();
    let mut stream = connect_from("127.0.0.1", &service.public).await;
    let mut served = 0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "a keep-alive connection lived {:?}",
            started.elapsed()
        );
        let (head, _) = get(&mut stream, "/healthz").await.expect("answered");
        served += 1;
        if head.contains("connection: close") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(served < 10, "closed by count ({served}), not by age");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        closed_soon(stream).await.is_some(),
        "still open after close"
    );
    service.stop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_gets_431_before_it_is_complete() {
    // What PAYHOOK_MAX_HEAD_BYTES defaults to: a 64 KiB URI and 8 KiB.
    const LIMIT: usize = 72 * 1024;
    let service = Service::start(&[]).await;

    // Just under the limit (a 60 KiB query, the URI limit being 64 KiB, and
    // 11 KB of headers): served.
    let mut stream = connect_from("127.0.0.1", &service.public).await;
    let mut request = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: payhook\r\n",
        "a".repeat(60 * 1024)
    );
    for n in 0..11 {
        request.push_str(&format!("X-Filler-{n}: {}\r\n", "b".repeat(1000)));
    }
    request.push_str("\r\n");
    assert!(
        (LIMIT - 2048..LIMIT).contains(&request.len()),
        "{}",
        request.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (head, _) = read_answer(&mut stream).await.expect("served");
    assert!(head.starts_with("http/1.1 200"), "{head}");

    // The attack's head (a 30 KB request line and 85 headers of 1 KB); a
    // request line alone over the limit. Each is sent without its final blank
    // line: the answer comes once the limit is crossed, long before
    // PAYHOOK_REQUEST_TIMEOUT (10 s), so no more than the limit was waited for.
    let mut attack = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: payhook\r\n",
        "a".repeat(30_000)
    );
    for n in 0..85 {
        attack.push_str(&format!("X-Filler-{n}: {}\r\n", "b".repeat(1000)));
    }
    let long_line = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: payhook\r\n",
        "a".repeat(LIMIT + 100)
    );
    for head in [attack, long_line] {
        let started = Instant::now();
        let mut stream = connect_from("127.0.0.1", &service.public).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = closed_by(stream, started + Duration::from_secs(5))
            .await
            .map(|(_, answer)| answer)
            .expect("an oversized head is answered and closed within 5 s");
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{:?}",
            &answer[..answer.len().min(200)]
        );
    }
    service.stop.stop().await;
}

/// A genuine callback with 60 KiB
/// beside it in the query and a 64 KiB form body. No genuine request is both
/// a long head and a full body: it is answered 413 by the connection bounds
/// (not a confusing 400 for a body cut short), and the client reads that
/// answer whole, even though it sent more than the server read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_head_with_a_full_body_gets_413() {
    let service = Service::start(&[]).await;
    let client = reqwest::Client::new();
    service.register(&client, "WIDE-1").await;
    let query = paid_callback("WIDE-1");
    let body = format!("y={}", "b".repeat(64 * 1024 - 2));
    let request = format!(
        "POST /paysera/callback?{query}&x={} HTTP/1.1\r\nHost: payhook\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        "a".repeat(60 * 1024),
        body.len()
    );
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = connect_from("127.0.0.1", &service.public).await;
        // The server may stop reading part-way: a failed write is expected.
        let _ = stream.write_all(request.as_bytes()).await;
        let (_, answer) = closed_by(stream, started + Duration::from_secs(5))
            .await
            .expect("answered and closed within 5 s");
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{:?}",
            &answer[..answer.len().min(200)]
        );
        assert!(answer.ends_with("bytes with its head"), "{answer:?}");
    }
    // The same callback, sent as the gateway sends it, is served.
    let reply = client
        .get(format!(
            "http://{}/paysera/callback?{query}",
            service.public
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "OK");
    service.stop.stop().await;
}

/// Sends a request head asking `Expect: 100-continue` for a body of `length`
/// bytes, and no body.
async fn expect_continue(
    addr: &str,
    request_line: &str,
    content_type: &str,
    length: usize,
) -> TcpStream {
    let mut stream = connect_from("127.0.0.1", addr).await;
    let head = format!(
        "{request_line} HTTP/1.1\r\nHost: payhook\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// A client that asks `Expect: 100-continue` for a body over the route's
/// limit is answered 413 at once and the connection closed: `100 Continue`
/// is never sent, so it never starts uploading. Within the limit, it gets
/// `100 Continue`, sends its body and is served. On both listeners, with each
/// route's own limit (64 KiB for a callback or the API's JSON, 16 KiB for a
/// console form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_100_continue() {
    let service = Service::start(&[]).await;
    let refused = [
        (
            &service.public,
            "POST /paysera/callback",
            "application/x-www-form-urlencoded",
            100_000_000,
            "request body too large",
        ),
        (
            &service.public,
            "POST /paysera/checkout/webhook",
            "application/json",
            64 * 1024 + 1,
            "request body too large",
        ),
        (
            &service.admin,
            "PUT /api/v1/orders/BIG-1",
            "application/json",
            100_000_000,
            "{\"error\":\"request body over 65536 bytes\"}",
        ),
        (
            &service.admin,
            "POST /ui/login",
            "application/x-www-form-urlencoded",
            16 * 1024 + 1,
            "{\"error\":\"request body over 16384 bytes\"}",
        ),
    ];
    for (addr, request_line, content_type, length, body) in refused {
        let started = Instant::now();
        let stream = expect_continue(addr, request_line, content_type, length).await;
        let (_, answer) = closed_by(stream, started + Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{request_line}: not answered and closed within 5 s"));
        assert!(
            answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{request_line}: {answer:?}"
        );
        assert!(
            !answer.contains("100 Continue"),
            "{request_line}: {answer:?}"
        );
        assert!(answer.ends_with(body), "{request_line}: {answer:?}");
        let head = answer.to_ascii_lowercase();
        assert!(
            head.contains("\r\nconnection: close\r\n"),
            "{request_line}: {answer:?}"
        );
        if std::ptr::eq(addr, &service.admin) {
            // The admin listener's answers are never cached nor sniffed.
            assert!(
                head.contains("\r\ncache-control: no-store\r\n")
                    && head.contains("\r\nx-content-type-options: nosniff\r\n"),
                "{request_line}: {answer:?}"
            );
        }
    }

    // Within the limit: 100 Continue, then the body, then the answer.
    let client = reqwest::Client::new();
    service.register(&client, "EXP-1").await;
    let callback = paid_callback("EXP-1");
    let order = r#"{"amount":1250,"currency":"EUR"}"#;
    let login = "token=not-the-token";
    let served = [
        (
            &service.public,
            "POST /paysera/callback",
            "application/x-www-form-urlencoded",
            callback.as_str(),
            "http/1.1 200",
            "OK",
        ),
        (
            &service.admin,
            "PUT /api/v1/orders/EXP-2",
            "application/json",
            order,
            "http/1.1 201",
            "EXP-2",
        ),
        (
            &service.admin,
            "POST /ui/login",
            "application/x-www-form-urlencoded",
            login,
            "http/1.1 401",
            "missing or wrong token",
        ),
    ];
    for (addr, request_line, content_type, body, status, text) in served {
        let mut stream = expect_continue(addr, request_line, content_type, body.len()).await;
        let (head, _) = read_answer(&mut stream)
            .await
            .unwrap_or_else(|| panic!("{request_line}: closed before 100 Continue"));
        assert_eq!(head, "http/1.1 100 continue", "{request_line}");
        stream.write_all(body.as_bytes()).await.unwrap();
        let (head, answer) = read_answer(&mut stream)
            .await
            .unwrap_or_else(|| panic!("{request_line}: not served"));
        assert!(head.starts_with(status), "{request_line}: {head}");
        assert!(answer.contains(text), "{request_line}: {answer}");
    }
    service.stop.stop().await;
}
