//! Start-up as an operator meets it, with the real binary in an empty
//! environment: which `.env` is read, when demo
//! mode may start, what a half configuration says, that no message shows a
//! secret, the admin token rules and the bearer scheme, and where the offline
//! commands take the project password from.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::gateway::{gateway, CallbackForm, PASSWORD};
use support::service::Service;
use support::{free_port, postgres, vectors};

const ADMIN_TOKEN: &str = "startup-admin-token-0123456789";
/// Appears in values that must never be shown.
const SECRET: &str = "s3cr3t-marker";

/// What a run came to; `code` is `None` when it was still running at the limit
/// (and was killed): for these tests that means it started when it must not.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_no_secret(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains(SECRET), "a secret was shown:\n{text}");
        }
    }

    /// Exit 2 with exactly one line on stderr, which holds every one of `words`.
    fn assert_config_error(&self, words: &[&str]) {
        assert_eq!(
            self.code,
            Some(2),
            "expected exit 2, got {:?}; stderr:\n{}",
            self.code,
            self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        for word in words {
            assert!(
                self.stderr.contains(word),
                "{word:?} not in {}",
                self.stderr
            );
        }
        self.assert_no_secret();
    }
}

/// The binary in `dir` (its working directory), with an empty environment but
/// for loopback listeners on free ports and a data directory inside `dir`.
fn payhook(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PAYHOOK_DATA_DIR", dir.join("data"))
        .env("PAYHOOK_BIND", "127.0.0.1:0")
        .env("PAYHOOK_ADMIN_BIND", "127.0.0.1:0")
        .current_dir(dir);
    cmd
}

fn run(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run payhook");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Long enough for a debug build to start demo mode (key generation), so a
/// test that fails because demo mode started fails for that reason.
const START_LIMIT: Duration = Duration::from_secs(20);

fn test_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/test-gateway-public.pem")
}

#[test]
fn only_the_working_directorys_env_is_read() {
    let root = tempfile::tempdir().unwrap();
    let child = root.path().join("child");
    std::fs::create_dir(&child).unwrap();
    // A parent's .env belongs to something else: it must change nothing.
    std::fs::write(
        root.path().join(".env"),
        "PAYSERA_PUBLIC_KEY_FILE=/nonexistent/parent-key.pem\n",
    )
    .unwrap();
    let show_key = |dir: &Path| {
        let ran = run(payhook(dir).args(["verify", "--show-key"]), START_LIMIT);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        ran.stdout
    };
    let production = show_key(&child);
    assert!(production.starts_with("rsa-"), "{production}");

    // The working directory's own .env is read.
    std::fs::write(
        child.join(".env"),
        format!("PAYSERA_PUBLIC_KEY_FILE={}\n", test_key().display()),
    )
    .unwrap();
    let own = show_key(&child);
    assert!(own.starts_with("rsa-"), "{own}");
    assert_ne!(own, production, "./.env was not read");

    // The environment wins over .env.
    let ran = run(
        payhook(&child)
            .args(["verify", "--show-key"])
            .env("PAYSERA_PUBLIC_KEY_FILE", "/nonexistent/from-env.pem"),
        START_LIMIT,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("from-env.pem"), "{}", ran.stderr);
}

#[test]
fn an_env_file_that_does_not_parse_stops_start_up_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "# payhook\nPAYSERA_PROJECT_ID=123\nPAYSERA_PROJECT_PASSWORD {SECRET}\n\
             PAYHOOK_ADMIN_TOKEN={ADMIN_TOKEN}\n"
        ),
    )
    .unwrap();
    // Serving (the default command), and every other command alike.
    for args in [&[][..], &["migrate"][..], &["verify", "--show-key"][..]] {
        let ran = run(payhook(dir.path()).args(args), START_LIMIT);
        ran.assert_config_error(&[".env line 3"]);
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing may start from a broken .env"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("DATABASE_URL=sqlite:x\nPAYSERA_PROJECT_PASSWORD=\"{SECRET}\n"),
    )
    .unwrap();
    run(&mut payhook(dir.path()), START_LIMIT).assert_config_error(&[".env line 2"]);
}

#[test]
fn demo_mode_starts_only_when_nothing_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}-from-a-file\n")).unwrap();
    let no_projects = dir.path().join("projects.toml");
    std::fs::write(&no_projects, "projects = []\n").unwrap();
    let sqlite = dir.path().join("shop.sqlite3");
    let sqlite_url = format!("sqlite:{}", sqlite.display());
    let smtp = format!("smtp://alerts:{SECRET}@127.0.0.1:25");
    let admin_token = format!("{SECRET}-0123456789");

    // (the environment, words the one error line must hold)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &[("PAYSERA_PROJECT_ID", "123")],
            &[
                "PAYSERA_PROJECT_PASSWORD",
                "required with PAYSERA_PROJECT_ID",
            ],
        ),
        (
            &[("PAYSERA_PROJECT_PASSWORD", SECRET)],
            &[
                "PAYSERA_PROJECT_ID",
                "required with PAYSERA_PROJECT_PASSWORD",
            ],
        ),
        (
            &[(
                "PAYSERA_PROJECT_PASSWORD_FILE",
                secret_file.to_str().unwrap(),
            )],
            &["PAYSERA_PROJECT_ID", "required"],
        ),
        (
            &[("PAYHOOK_CONFIG_FILE", no_projects.to_str().unwrap())],
            &["PAYHOOK_CONFIG_FILE", "lists no project"],
        ),
        (
            &[("DATABASE_URL", &sqlite_url)],
            &["PAYSERA_PROJECT_ID", "DATABASE_URL is set"],
        ),
        (
            &[("PAYHOOK_ADMIN_TOKEN", &admin_token)],
            &["PAYSERA_PROJECT_ID", "PAYHOOK_ADMIN_TOKEN is set"],
        ),
        (
            &[("SMTP_URL", &smtp)],
            &["PAYSERA_PROJECT_ID", "SMTP_URL is set"],
        ),
        (&[("DATABASE_URL", "")], &["DATABASE_URL", "set but empty"]),
    ];
    for (env, words) in cases {
        let mut cmd = payhook(dir.path());
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let ran = run(&mut cmd, START_LIMIT);
        assert!(
            !ran.stderr.contains("DEMO MODE"),
            "{env:?} started demo mode"
        );
        ran.assert_config_error(words);
    }
    assert!(
        !sqlite.exists(),
        "demo orders written into the shop's database"
    );
    assert!(!dir.path().join("data").exists(), "demo material created");
}

#[test]
fn the_admin_token_is_checked_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for (token, words) in [
        ("s3cr3t-marker", &["PAYHOOK_ADMIN_TOKEN", "at least 16"][..]),
        (
            "s3cr3t-marker 0123456789",
            &["PAYHOOK_ADMIN_TOKEN", "whitespace"][..],
        ),
        (
            "s3cr3t-marker-0123456789\t",
            &["PAYHOOK_ADMIN_TOKEN", "whitespace"][..],
        ),
    ] {
        let ran = run(
            payhook(dir.path())
                .env("PAYSERA_PROJECT_ID", "123")
                .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
                .env("PAYHOOK_ADMIN_TOKEN", token),
            START_LIMIT,
        );
        ran.assert_config_error(words);
    }
    // The same rules for a token from a file (a trailing newline is not part of it).
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cr3t-marker 0123456789\n").unwrap();
    let ran = run(
        payhook(dir.path())
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYHOOK_ADMIN_TOKEN_FILE", &file),
        START_LIMIT,
    );
    ran.assert_config_error(&["PAYHOOK_ADMIN_TOKEN", "whitespace"]);
}

/// One HTTP/1.1 request; the status code of the answer.
fn status_of(port: u16, path: &str, authorization: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: payhook\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let _service = Service::start(
        payhook(dir.path())
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}")),
        admin,
        START_LIMIT,
    );
    let path = "/api/v1/callbacks";
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let header = format!("{scheme} {ADMIN_TOKEN}");
        assert_eq!(status_of(admin, path, Some(&header)), 200, "{header}");
    }
    assert_eq!(
        status_of(admin, path, Some(&format!("Bearer   {ADMIN_TOKEN}"))),
        200,
        "RFC 7235: one or more spaces after the scheme"
    );
    for header in [
        format!("Basic {ADMIN_TOKEN}"),
        format!("Bearer{ADMIN_TOKEN}"),
        format!("Bearer {ADMIN_TOKEN}x"),
        format!("Bearer {}", ADMIN_TOKEN.to_uppercase()),
        "Bearer".to_string(),
    ] {
        assert_eq!(status_of(admin, path, Some(&header)), 401, "{header}");
    }
    assert_eq!(status_of(admin, path, None), 401);
}

#[test]
fn no_database_url_form_shows_its_password() {
    // Port 1 refuses connections: start-up fails after logging its configuration.
    let urls = [
        format!("postgres://payhook:{SECRET}@127.0.0.1:1/payhook"),
        format!("postgres://127.0.0.1:1/payhook?user=payhook&password={SECRET}"),
        format!("host=127.0.0.1 port=1 user=payhook password={SECRET} dbname=payhook"),
        format!("host=127.0.0.1 port=1 password='{SECRET} x' dbname=payhook"),
        // libpq quotes a malformed token back; the message is scrubbed.
        format!("postgres://payhook:{SECRET}%zz@127.0.0.1:1/payhook"),
        format!("postgres://payhook:{SECRET}@[::1/payhook"),
        format!("postgres://127.0.0.1:1/payhook?password={SECRET}=x"),
        // A primary and its standby (docs/ha.md).
        format!(
            "postgres://payhook:{SECRET}@127.0.0.1:1,127.0.0.1:2/payhook\
             ?target_session_attrs=read-write"
        ),
        format!(
            "host=127.0.0.1,127.0.0.1 port=1,2 password={SECRET} dbname=payhook \
             target_session_attrs=primary"
        ),
    ];
    // Each start waits out the acquire timeout: all run at once.
    std::thread::scope(|scope| {
        for url in &urls {
            for command in [&[][..], &["migrate"][..]] {
                scope.spawn(move || startup_hides_the_password(command, url));
            }
        }
    });
}

fn startup_hides_the_password(command: &[&str], url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ran = run(
        payhook(dir.path())
            .args(command)
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOOK_DB_ACQUIRE_TIMEOUT", "1s")
            .env("DATABASE_URL", url),
        START_LIMIT,
    );
    assert!(
        matches!(ran.code, Some(c) if c != 0),
        "{url}: {:?}\n{}",
        ran.code,
        ran.stderr
    );
    ran.assert_no_secret();
    if command.is_empty() {
        // The start-up line names the database with the password replaced.
        assert!(
            ran.stderr.contains("database=postgres (") && ran.stderr.contains("***"),
            "{}",
            ran.stderr
        );
    }
}

/// Several hosts without `target_session_attrs=read-write` (or `primary`)
/// could land on a standby: refused before anything connects, naming the
/// setting, never the value.
#[test]
fn several_hosts_without_asking_for_the_primary_are_refused() {
    for url in [
        format!("postgres://payhook:{SECRET}@127.0.0.1:1,127.0.0.1:2/payhook"),
        format!("host=127.0.0.1,127.0.0.1 port=1,2 password={SECRET} dbname=payhook"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ran = run(
            payhook(dir.path())
                .env("PAYSERA_PROJECT_ID", "123")
                .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
                .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("DATABASE_URL", &url),
            START_LIMIT,
        );
        assert_eq!(ran.code, Some(2), "{url}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("target_session_attrs=read-write"),
            "{}",
            ran.stderr
        );
        ran.assert_no_secret();
    }
}

#[test]
fn a_key_value_connection_string_is_a_postgres_url() {
    let cluster = postgres::cluster();
    let name = "payhook_conninfo";
    // Empty: `payhook migrate` is what applies the migrations here.
    cluster.create_empty_database(name);
    let dir = tempfile::tempdir().unwrap();
    // The test cluster trusts loopback: the password is there to be hidden.
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres password='{SECRET} x' dbname={name}",
        cluster.port()
    );
    let ran = run(
        payhook(dir.path())
            .arg("migrate")
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("DATABASE_URL", &conninfo),
        Duration::from_secs(60),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("migration(s) applied"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.starts_with("0 "), "{}", ran.stdout);
    ran.assert_no_secret();
    let tables = postgres::psql(
        &cluster.url(name),
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'",
    )
    .unwrap();
    assert_eq!(tables.trim(), "1", "{tables}");
}

/// `data`/`sign` of `payhook payment-url --json` for one order.
fn payment_sign(dir: &Path, configure: impl Fn(&mut Command)) -> Ran {
    let mut cmd = payhook(dir);
    cmd.args(["payment-url", "--json", "--project-id", "123"]);
    configure(&mut cmd);
    cmd.args([
        "orderid=PW-1",
        "amount=1250",
        "currency=EUR",
        "accepturl=https://shop.example/ok",
        "cancelurl=https://shop.example/cancel",
        "callbackurl=https://pay.shop.example/paysera/callback",
    ]);
    run(&mut cmd, START_LIMIT)
}

#[test]
fn the_offline_commands_take_the_password_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let reference = payment_sign(dir.path(), |c| {
        c.args(["--password", PASSWORD]);
    });
    assert_eq!(reference.code, Some(0), "{}", reference.stderr);
    let sign = |ran: &Ran| -> String {
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        let json: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
        json["sign"].as_str().unwrap().to_string()
    };
    let expected = sign(&reference);
    for ran in [
        payment_sign(dir.path(), |c| {
            c.arg("--password-file").arg(&file);
        }),
        payment_sign(dir.path(), |c| {
            c.env("PAYSERA_PROJECT_PASSWORD", PASSWORD);
        }),
        payment_sign(dir.path(), |c| {
            c.env("PAYSERA_PROJECT_PASSWORD_FILE", &file);
        }),
        // The command line wins over the environment.
        payment_sign(dir.path(), |c| {
            c.arg("--password-file")
                .arg(&file)
                .env("PAYSERA_PROJECT_PASSWORD", SECRET);
        }),
    ] {
        assert_eq!(sign(&ran), expected);
    }

    let ran = payment_sign(dir.path(), |_| {});
    ran.assert_config_error(&["--password-file", "PAYSERA_PROJECT_PASSWORD"]);
    let ran = payment_sign(dir.path(), |c| {
        c.args(["--password-file", "/nonexistent/password"]);
    });
    ran.assert_config_error(&["--password-file", "/nonexistent/password"]);

    // verify: an encrypted callback opens only with the project password.
    let fields = [
        ("projectid", "123"),
        ("orderid", "PW-1"),
        ("amount", "1250"),
        ("currency", "EUR"),
        ("status", "1"),
    ];
    let encrypted = gateway().callback_query(&fields, CallbackForm::Encrypted);
    let key = vectors::vectors_dir().join("current/public.pem");
    let verify = |configure: &dyn Fn(&mut Command)| {
        let mut cmd = payhook(dir.path());
        cmd.args(["verify", "--project-id", "123", "--public-key"])
            .arg(&key)
            .arg(&encrypted);
        configure(&mut cmd);
        run(&mut cmd, START_LIMIT)
    };
    for ran in [
        verify(&|c| {
            c.arg("--password-file").arg(&file);
        }),
        verify(&|c| {
            c.env("PAYSERA_PROJECT_PASSWORD_FILE", &file);
        }),
    ] {
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert!(
            ran.stdout.contains("\"orderid\":\"PW-1\""),
            "{}",
            ran.stdout
        );
    }
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, format!("{SECRET}\n")).unwrap();
    let ran = verify(&|c| {
        c.arg("--password-file").arg(&wrong);
    });
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    ran.assert_no_secret();
}

/// One HTTP/1.1 request with a body; the status code and body of the answer.
fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: payhook\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A Checkout project alone, exactly as README and `.env.example`
/// document it (client id, client secret, and the admin token every non-demo
/// configuration needs), starts the real binary: it is ready, and a signed
/// Checkout webhook for a registered order is answered 200 and fulfils it.
#[test]
fn a_checkout_only_configuration_starts_and_serves() {
    use payhook::sim::{CheckoutSigner, OrderFigures};
    const CLIENT_ID: &str = "startup-checkout-client";
    const CHECKOUT_SECRET: &str = "startup-checkout-secret";
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let service = Service::start(
        payhook(dir.path())
            .env("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID)
            .env("PAYSERA_CHECKOUT_SECRET", CHECKOUT_SECRET)
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOOK_BIND", format!("127.0.0.1:{public}"))
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}")),
        public,
        START_LIMIT,
    );
    assert_eq!(
        status_of(public, "/readyz", None),
        200,
        "{}",
        service.stderr()
    );

    let bearer = ("Authorization", format!("Bearer {ADMIN_TOKEN}"));
    let json = ("Content-Type", "application/json".to_string());
    let order = format!(
        r#"{{"amount": 2500, "currency": "EUR", "project_id": "{CLIENT_ID}", "test": false}}"#
    );
    let (status, body) = exchange(
        admin,
        "PUT",
        "/api/v1/orders/M-START-1",
        &[bearer.clone(), json],
        order.as_bytes(),
    );
    assert!(matches!(status, 200 | 201), "register: {status} {body}");

    let webhook = CheckoutSigner::new(CHECKOUT_SECRET).snapshot(&OrderFigures {
        orderid: "M-START-1",
        amount: 2500,
        amount_paid: 2500,
        currency: "EUR",
        updated_at: 1_700_000_000,
        payment_status: "settled",
    });
    let headers: Vec<(&str, String)> = webhook.headers.clone();
    let (status, body) = exchange(
        public,
        "POST",
        "/paysera/checkout/webhook",
        &headers,
        &webhook.body,
    );
    assert_eq!(status, 200, "webhook: {body}\n{}", service.stderr());

    let (status, body) = exchange(
        admin,
        "GET",
        &format!("/api/v1/orders/M-START-1?project_id={CLIENT_ID}"),
        &[bearer],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let order: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(order["state"], "paid", "{order}");

    // A classic callback has no project to verify against: refused, saying so.
    let (status, body) = exchange(
        public,
        "GET",
        "/paysera/callback?data=QUJD&ss2=AAAA",
        &[],
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no classic project"), "{body}");
}
