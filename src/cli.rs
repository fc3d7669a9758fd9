//! Command-line interface: argument parsing and the offline commands.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use crate::keyfile::load_public_keys;
use crate::paysera::{
    build_payment_request, Environment, KeySet, Policy, Project, RequestParams, Verifier,
    SPEC_VERSION,
};

#[derive(Debug, Parser)]
#[command(
    name = "payhook",
    version,
    about = "A strict, durable receiver for Paysera payment callbacks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the callback service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Play the gateway against payhook in demo mode (run it in another terminal).
    Simulate(SimulateArgs),
    /// Verify and decode one callback offline; prints its fields as JSON.
    Verify(VerifyArgs),
    /// Verify and decode one Checkout (Modern) webhook offline; prints it as JSON.
    VerifyCheckout(VerifyCheckoutArgs),
    /// Verify and decode one notification of a hash-signed gateway offline
    /// (FreeKassa, YooMoney, WebMoney, Robokassa, Interkassa, Веб Оплата):
    /// prints what it proves as JSON, exit 0; 1 with the reason when it does
    /// not verify; 2 on a usage error.
    VerifyGateway(VerifyGatewayArgs),
    /// Print a signed payment URL for the given request fields.
    PaymentUrl(PaymentUrlArgs),
    /// Work on orders directly in the database, with the service's configuration.
    Orders(OrdersArgs),
    /// Print a new secret for SHOP_NOTIFY_SECRET (whsec_ + 32 random bytes, base64).
    NotifySecret,
    /// Print the admin API's OpenAPI 3.1 document (what GET /api/v1/openapi.json
    /// serves), or write it to a file (`--out docs/openapi.json`).
    Openapi {
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Read and replay the callback journal, on the database directly.
    Callbacks(CallbacksArgs),
    /// The shop's events (the outbox), on the database directly.
    Events(EventsArgs),
    /// The console's sessions, on the database directly.
    Sessions(SessionsArgs),
    /// Run a callback URL copied from the gateway's panel through the pipeline;
    /// stored like a received callback, with method INGEST.
    IngestUrl {
        url: String,
        #[arg(long)]
        json: bool,
    },
    /// Self-diagnosis: configuration, gateway keys, database, SMTP, the shop's
    /// endpoint and the public listener, one line each (✓, ! warning, ✗ with
    /// the fix). Exit 0 nothing failed, 1 a check failed, 2 configuration error.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Delete journal rows older than an age, keeping every row of orders that
    /// are paid, in review or refunded. A dry run unless --yes.
    Prune {
        #[arg(long, value_name = "AGE")]
        older_than: String,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Erase one order's personal data from the journal now (the buyer's
    /// e-mail, names, phone, the sender's address), keeping its accounting
    /// facts, and record the erasure; or every order whose stored requests
    /// carry an e-mail address. Exit 0 done (the rows erased are printed; 0
    /// when erased before), 1 no such order (no request carries the
    /// address), 2 usage or configuration error, 3 database error.
    Erase {
        /// The order's id.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "email",
            conflicts_with = "email"
        )]
        order: Option<String>,
        /// Find the orders by the buyer's e-mail address instead (reads
        /// every stored request not erased yet).
        #[arg(long, value_name = "ADDR", conflicts_with = "project_id")]
        email: Option<String>,
        /// The project the order belongs to (default: the first configured).
        #[arg(long)]
        project_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Events, oldest first.
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send a delivered or dead event again (the same webhook-id).
    Retry { id: i64 },
}

pub fn events(args: EventsArgs) -> ExitCode {
    match args.command {
        EventsCommand::List { state, limit, json } => {
            crate::operator::events_list(state.as_deref(), limit, json)
        }
        EventsCommand::Retry { id } => crate::operator::events_retry(id),
    }
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sign out everywhere: end every console session, on every instance;
    /// prints how many ended. Exit 0 done, 2 configuration, 3 database error.
    Revoke,
}

pub fn sessions(args: SessionsArgs) -> ExitCode {
    match args.command {
        SessionsCommand::Revoke => crate::operator::sessions_revoke(),
    }
}

#[derive(Debug, Args)]
pub struct CallbacksArgs {
    #[command(subcommand)]
    pub command: CallbacksCommand,
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// Stored callbacks, newest first.
    List {
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long = "order")]
        orderid: Option<String>,
        /// Received within this age (90s, 10m, 2d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One stored request: raw, decoded fields, outcome, reason and answer.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Run stored callbacks through the pipeline again (idempotent: a replayed
    /// paid callback is a duplicate); prints each new outcome.
    Replay {
        id: Option<i64>,
        /// Every callback received within this age (90s, 10m, 2d).
        #[arg(long)]
        since: Option<String>,
        /// With --since: only callbacks with this outcome.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct OrdersArgs {
    #[command(subcommand)]
    pub command: OrdersCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Close an order: no callback is expected for it any more, so the
    /// missed-callback detector stops counting it. Exit 0 closed (or already
    /// closed), 1 no such order, 2 usage or configuration error, 3 database error.
    Close {
        orderid: String,
        /// The project the order belongs to (default: the first configured):
        /// a classic project's number, a Checkout client id or a gateway's name.
        #[arg(long)]
        project_id: Option<String>,
    },
    /// An order's story: registration, state, flags, every callback.
    Show {
        orderid: String,
        #[arg(long)]
        project_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Confirm a reviewed notification of a gateway without a recipe
    /// (outcome `captured`): the order is paid as registered, once, and the
    /// shop is told. Exit 0 decided (the outcome is printed: `fulfilled`, or
    /// `duplicate` when confirmed before), 1 refused (not a captured
    /// notification of this gateway and order, or the order is not
    /// registered), 2 usage or configuration error, 3 database error.
    Confirm {
        orderid: String,
        /// The gateway's name (`PAYHOOK_GATEWAYS_FILE`).
        #[arg(long)]
        project_id: String,
        /// The notification's id, as `payhook callbacks list` shows it.
        #[arg(long)]
        callback: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The gateway project id the callback must belong to.
    #[arg(long, env = "PAYSERA_PROJECT_ID")]
    pub project_id: Option<u64>,
    /// The project password (needed for ss1, encrypted callbacks and legacy _ss1).
    /// Shown to other users by `ps` and kept in shell history: prefer
    /// --password-file, PAYSERA_PROJECT_PASSWORD or PAYSERA_PROJECT_PASSWORD_FILE.
    #[arg(long, conflicts_with = "password_file")]
    pub password: Option<String>,
    /// A file holding the project password (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// PEM file(s) with the gateway's public key: PUBLIC KEY, RSA PUBLIC KEY or
    /// CERTIFICATE (default: Paysera's production key, compiled in).
    #[arg(
        long = "public-key",
        env = "PAYSERA_PUBLIC_KEY_FILE",
        value_delimiter = ','
    )]
    pub public_keys: Vec<PathBuf>,
    /// Accept a callback without RSA signature on a valid ss1.
    #[arg(long)]
    pub accept_ss1: bool,
    /// Accept legacy 1.x (wp_) callbacks: _ss2 plus _ss1 or _ss1v2, always.
    #[arg(long, env = "PAYHOOK_ACCEPT_LEGACY", value_parser = clap::builder::FalseyValueParser::new())]
    pub accept_legacy: bool,
    /// Require every signature present to verify, ss1 included.
    #[arg(long)]
    pub strict: bool,
    /// Print the SHA-256 fingerprint of each configured key.
    #[arg(long)]
    pub show_key: bool,
    /// The callback's query string, or its whole URL; `-` reads it from stdin.
    pub query_or_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyCheckoutArgs {
    /// A file holding the API client secret (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// A file holding the previous secret, during a rotation.
    #[arg(long, value_name = "FILE")]
    pub previous_secret_file: Option<PathBuf>,
    /// The request's headers, one `Name: value` per line (as `curl -D` saves
    /// them, or as `payhook callbacks show` prints a stored webhook).
    #[arg(long, value_name = "FILE")]
    pub headers: PathBuf,
    /// The body exactly as received; `-` reads it from stdin.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyGatewayArgs {
    /// A built-in profile (freekassa, yoomoney, webmoney, robokassa,
    /// interkassa, weboplata) with its defaults.
    #[arg(long, conflicts_with_all = ["config", "gateway"])]
    pub profile: Option<String>,
    #[arg(long, conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// A file holding the secret (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// A fixed currency, for a gateway whose notification names none.
    #[arg(long)]
    pub currency: Option<String>,
    /// The gateways file (`PAYHOOK_GATEWAYS_FILE`), with --gateway.
    #[arg(long, value_name = "FILE", requires = "gateway")]
    pub config: Option<PathBuf>,
    /// The gateway's name in that file.
    #[arg(long, requires = "config")]
    pub gateway: Option<String>,
    /// How it arrived: GET (the argument is the query) or POST (the form body).
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The query string (or a whole URL) or the form body.
    pub request: String,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// payhook's public listener.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// payhook's admin listener.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin_url: String,
    /// The data directory the demo service uses (its demo gateway lives there).
    #[arg(long, env = "PAYHOOK_DATA_DIR", default_value = "./payhook-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PaymentUrlArgs {
    #[arg(long, env = "PAYSERA_PROJECT_ID")]
    pub project_id: u64,
    /// The project password. Shown to other users by `ps` and kept in shell
    /// history: prefer --password-file, PAYSERA_PROJECT_PASSWORD or
    /// PAYSERA_PROJECT_PASSWORD_FILE.
    #[arg(long, conflicts_with = "password_file")]
    pub password: Option<String>,
    /// A file holding the project password (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Use the gateway's sandbox instead of production.
    #[arg(long)]
    pub sandbox: bool,
    /// Print {"data", "sign", "url"} instead of the bare URL.
    #[arg(long)]
    pub json: bool,
    /// The `version` the request states.
    #[arg(long = "spec-version", default_value = SPEC_VERSION)]
    pub spec_version: String,
    /// Request fields as key=value, in the order they go into `data`.
    #[arg(value_parser = parse_key_value, required = true)]
    pub fields: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// Exit codes: 0 accepted, 1 rejected, 2 usage or configuration error.
pub fn verify(args: VerifyArgs) -> ExitCode {
    let keys = if args.public_keys.is_empty() {
        KeySet::paysera_production()
    } else {
        match load_public_keys(&args.public_keys) {
            Ok(keys) => keys,
            Err(e) => return usage_error(&e.to_string()),
        }
    };
    if args.show_key {
        for key in keys.keys() {
            println!("rsa-{} sha256:{}", key.bits(), key.fingerprint());
        }
        if args.query_or_url.is_none() {
            return ExitCode::SUCCESS;
        }
    }
    let Some(project_id) = args.project_id else {
        return usage_error("--project-id (or PAYSERA_PROJECT_ID) is required");
    };
    let input = match args.query_or_url.as_deref() {
        None => return usage_error("give the callback's query string or URL (or - for stdin)"),
        Some("-") => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return usage_error(&format!("cannot read stdin: {e}"));
            }
            text
        }
        Some(text) => text.to_string(),
    };
    let password = match project_password(args.password, args.password_file.as_deref()) {
        Ok(p) => p,
        Err(e) => return usage_error(&e),
    };
    let project = Project::new(project_id, password);
    let policy = Policy {
        accept_ss1: args.accept_ss1,
        strict: args.strict,
        accept_legacy: args.accept_legacy,
    };
    let verifier = match Verifier::new(vec![project], keys, policy) {
        Ok(v) => v,
        Err(e) => return usage_error(&e.to_string()),
    };
    match verifier.verify(&RequestParams::from_query_or_url(&input)) {
        Ok(callback) => match crate::operator::terminal::json(callback.fields(), false) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&format!("cannot print fields: {e}")),
        },
        Err(e) if e.is_configuration() => usage_error(&e.to_string()),
        Err(e) => {
            eprintln!("rejected: {e}");
            ExitCode::from(1)
        }
    }
}

/// Exit codes: 0 accepted, 1 rejected or malformed, 2 usage error.
pub fn verify_checkout(args: VerifyCheckoutArgs) -> ExitCode {
    use crate::checkout::{Headers, Secret, WebhookVerifier};
    let read_secret = |path: &Path| -> Result<SecretString, String> {
        crate::config::read_secret_file(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut secrets = Vec::new();
    let files = std::iter::once(("current", Some(args.secret_file.as_path()))).chain(
        std::iter::once(("previous", args.previous_secret_file.as_deref())),
    );
    for (label, file) in files {
        let Some(file) = file else { continue };
        let secret = match read_secret(file).map(|key| Secret::new(label, key)) {
            Ok(Ok(secret)) => secret,
            Ok(Err(e)) => return usage_error(&e.to_string()),
            Err(e) => return usage_error(&e),
        };
        secrets.push(secret);
    }
    let verifier = match WebhookVerifier::new(secrets) {
        Ok(v) => v,
        Err(e) => return usage_error(&e.to_string()),
    };
    let header_text = match std::fs::read(&args.headers) {
        Ok(bytes) => bytes,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", args.headers.display())),
    };
    let mut headers = Headers::new();
    for line in header_text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Skips the request or status line and anything else without a colon.
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let value = &line[colon + 1..];
        let start = value.iter().position(|b| *b != b' ').unwrap_or(value.len());
        headers.push(name, &value[start..]);
    }
    let body = if args.body_file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
            return usage_error(&format!("cannot read stdin: {e}"));
        }
        bytes
    } else {
        match std::fs::read(&args.body_file) {
            Ok(bytes) => bytes,
            Err(e) => {
                return usage_error(&format!("cannot read {}: {e}", args.body_file.display()))
            }
        }
    };
    match verifier.verify(&headers, &body) {
        Ok(webhook) => match crate::operator::terminal::json(&webhook, true) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&format!("cannot print the webhook: {e}")),
        },
        Err(e) if e.is_verification() => {
            eprintln!("rejected: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("malformed (authentic, but not a webhook payhook can read): {e}");
            ExitCode::from(1)
        }
    }
}

pub fn verify_gateway(args: VerifyGatewayArgs) -> ExitCode {
    use crate::gateways::{GatewaySettings, Recipe, Request};
    let recipe = match (&args.profile, &args.config, &args.gateway) {
        (Some(profile), None, None) => {
            let secret = match (&args.secret, &args.secret_file) {
                (Some(s), _) => Some(SecretString::from(s.clone())),
                (None, Some(file)) => match crate::config::read_secret_file(file) {
                    Ok(secret) => Some(secret),
                    Err(e) => return usage_error(&format!("cannot read {}: {e}", file.display())),
                },
                (None, None) => None,
            };
            let settings = GatewaySettings {
                name: profile.clone(),
                profile: profile.clone(),
                currency: args.currency.clone(),
                ..GatewaySettings::default()
            };
            match Recipe::build(&settings, secret, None) {
                Ok(recipe) => recipe,
                Err(e) => return usage_error(&e.to_string()),
            }
        }
        (None, Some(file), Some(name)) => {
            let recipes = match crate::config::gateways::read_file(file) {
                Ok(recipes) => recipes,
                Err(e) => return usage_error(&e.to_string()),
            };
            match recipes.into_iter().find(|r| &r.name == name) {
                Some(recipe) => recipe,
                None => return usage_error(&format!("no gateway {name:?} in {}", file.display())),
            }
        }
        _ => return usage_error(
            "give --profile NAME (with --secret or --secret-file), or --config FILE --gateway NAME",
        ),
    };
    let text = match args.method.to_ascii_uppercase().as_str() {
        // A whole URL: its query.
        "GET" => args
            .request
            .split_once('?')
            .map_or(args.request.as_str(), |(_, q)| q),
        "POST" => args.request.as_str(),
        other => return usage_error(&format!("--method {other}: GET or POST")),
    };
    match recipe.read(&Request::from_urlencoded(text.as_bytes())) {
        Ok(payment) if payment.verified => {
            let shown = serde_json::json!({
                "gateway": recipe.name,
                "orderid": payment.orderid,
                "amount": payment.amount.map(|a| a.minor_units()),
                "currency": payment.currency.as_ref().map(|c| c.as_str()),
                "paid": payment.paid,
                "test": payment.test,
                "dedup": payment.dedup,
                "reply": payment.reply,
            });
            match crate::operator::terminal::json(&shown, true) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => usage_error(&format!("cannot print it: {e}")),
            }
        }
        Ok(_) => {
            eprintln!(
                "not verified: gateway {} has no recipe (a notification is kept for review, \
                 never a payment by itself)",
                recipe.name
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("rejected: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn payment_url(args: PaymentUrlArgs) -> ExitCode {
    let password = match project_password(args.password, args.password_file.as_deref()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return usage_error(
                "the project password is required: --password-file FILE, \
                 PAYSERA_PROJECT_PASSWORD or PAYSERA_PROJECT_PASSWORD_FILE",
            )
        }
        Err(e) => return usage_error(&e),
    };
    let request = match build_payment_request(
        args.project_id,
        password.expose_secret(),
        &args.fields,
        &args.spec_version,
    ) {
        Ok(r) => r,
        Err(e) => return usage_error(&e.to_string()),
    };
    let env = if args.sandbox {
        Environment::Sandbox
    } else {
        Environment::Production
    };
    let url = request.url(env);
    if args.json {
        let out = serde_json::json!({"data": request.data, "sign": request.sign, "url": url});
        println!("{out}");
    } else {
        println!("{url}");
    }
    ExitCode::SUCCESS
}

/// The project password, as the service reads it: `--password`, else
/// `--password-file`, else PAYSERA_PROJECT_PASSWORD, else the file named by
/// PAYSERA_PROJECT_PASSWORD_FILE. Errors name the source, never the value.
fn project_password(
    flag: Option<String>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, String> {
    let read = |path: &Path, source: &str| {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{source}: cannot read {}: {e}", path.display()))?;
        match text.trim_end_matches(['\r', '\n']) {
            "" => Err(format!("{source}: {} is empty", path.display())),
            password => Ok(Some(SecretString::from(password.to_string()))),
        }
    };
    if let Some(password) = flag {
        return Ok(Some(SecretString::from(password)));
    }
    if let Some(path) = file {
        return read(path, "--password-file");
    }
    if let Some(password) = std::env::var("PAYSERA_PROJECT_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(Some(SecretString::from(password)));
    }
    match std::env::var_os("PAYSERA_PROJECT_PASSWORD_FILE").filter(|v| !v.is_empty()) {
        Some(path) => read(Path::new(&path), "PAYSERA_PROJECT_PASSWORD_FILE"),
        None => Ok(None),
    }
}

/// Loads settings, logging a bad key as one line (exit 2).
fn settings() -> Result<Settings, ExitCode> {
    Settings::from_env().map_err(|e| usage_error(&e.to_string()))
}

/// Settings for a command that needs the gateway's projects: in demo mode,
/// the demo gateway is made (or read) here, once.
fn provisioned_settings() -> Result<Settings, ExitCode> {
    let mut settings = settings()?;
    crate::demo::provision(&mut settings).map_err(|e| usage_error(&e.to_string()))?;
    Ok(settings)
}

pub fn serve() -> ExitCode {
    let settings = match provisioned_settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    crate::telemetry::init(settings.logging.format);
    if settings.demo {
        announce_demo(&settings);
    }
    tracing::info!(config = %settings.summary(), "starting payhook {}", env!("CARGO_PKG_VERSION"));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage_error(&format!("cannot start the runtime: {e}")),
    };
    // libpq quotes parts of a malformed connection string back.
    let scrubber = settings.scrubber();
    runtime.block_on(async move {
        let app = match crate::startup::Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                let error = scrubber.scrub(&format!("{e:#}"));
                tracing::error!(error = %error, "start-up failed");
                eprintln!("error: start-up failed: {error}");
                return ExitCode::from(2);
            }
        };
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn announce_demo(settings: &Settings) {
    let dir = crate::demo::demo_dir(&settings.data_dir);
    eprintln!(
        "\n*** DEMO MODE: no PAYSERA_PROJECT_ID configured. ***\n\
         payhook is using a throw-away gateway key pair and project {} from {}.\n\
         It accepts only callbacks signed by that demo key: NOT Paysera's. Listening on {} (admin {}).\n\
         Admin token: {}/admin-token. Send it demo callbacks with: cargo run --release -- simulate\n",
        crate::demo::DEMO_PROJECT_ID,
        dir.display(),
        settings.http.bind,
        settings.http.admin_bind,
        dir.display(),
    );
}

pub fn simulate(args: SimulateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage_error(&format!("cannot start the runtime: {e}")),
    };
    let target = crate::simulate::Target {
        url: args.url.trim_end_matches('/'),
        admin_url: args.admin_url.trim_end_matches('/'),
        data_dir: &args.data_dir,
    };
    match runtime.block_on(crate::simulate::run(target)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => usage_error(&format!("{e:#}")),
    }
}

pub fn migrate() -> ExitCode {
    let settings = match settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let db = &settings.database;
    let result =
        crate::store::Store::connect(&db.connection, 1, db.acquire_timeout, db.statement_timeout)
            .and_then(|store| store.migrate());
    match result {
        Ok(applied) => {
            println!("{applied} migration(s) applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", settings.scrubber().scrub(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

pub fn orders(args: OrdersArgs) -> ExitCode {
    match args.command {
        OrdersCommand::Close {
            orderid,
            project_id,
        } => crate::operator::orders_close(&orderid, project_id.as_deref()),
        OrdersCommand::Show {
            orderid,
            project_id,
            json,
        } => crate::operator::orders_show(&orderid, project_id.as_deref(), json),
        OrdersCommand::Confirm {
            orderid,
            project_id,
            callback,
            json,
        } => crate::operator::orders_confirm(&orderid, &project_id, callback, json),
    }
}

pub fn callbacks(args: CallbacksArgs) -> ExitCode {
    use crate::operator::{callbacks_list, callbacks_replay, callbacks_show};
    match args.command {
        CallbacksCommand::List {
            outcome,
            orderid,
            since,
            limit,
            json,
        } => callbacks_list(outcome.as_deref(), orderid, since.as_deref(), limit, json),
        CallbacksCommand::Show { id, json } => callbacks_show(id, json),
        CallbacksCommand::Replay {
            id,
            since,
            outcome,
            json,
        } => callbacks_replay(id, since.as_deref(), outcome.as_deref(), json),
    }
}

pub fn notify_secret() -> ExitCode {
    println!("{}", crate::notify::WebhookSecret::generate());
    ExitCode::SUCCESS
}

pub fn openapi(out: Option<&std::path::Path>) -> ExitCode {
    let document = crate::startup::openapi_document();
    match out {
        None => {
            print!("{document}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, document) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
