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
    /// Print a signed payment URL for the given request fields.
    PaymentUrl(PaymentUrlArgs),
    /// Work on orders directly in the database, with the service's configuration.
    Orders(OrdersArgs),
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
        /// The project the order belongs to (default: the first configured).
        #[arg(long)]
        project_id: Option<u64>,
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
        Ok(callback) => match serde_json::to_string(callback.fields()) {
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
        } => close_order(&orderid, project_id),
    }
}

fn close_order(orderid: &str, project_id: Option<u64>) -> ExitCode {
    use crate::store::{DatabaseConfig, Store};
    let settings = match provisioned_settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let projects = &settings.gateway.projects;
    let project = match project_id {
        None => projects.first(),
        Some(id) => projects.iter().find(|p| p.id == id),
    };
    let Some(project) = project.map(|p| p.id) else {
        return usage_error(&format!(
            "project {} is not configured",
            project_id.map_or("-".into(), |id| id.to_string())
        ));
    };
    // Opening a missing SQLite file would create an empty database: that is a
    // wrong DATABASE_URL or PAYHOOK_DATA_DIR, not an order that does not exist.
    let db = &settings.database;
    if let DatabaseConfig::Sqlite { path } = &db.connection {
        if !path.exists() {
            return usage_error(&format!(
                "no database at {} (check DATABASE_URL / PAYHOOK_DATA_DIR)",
                path.display()
            ));
        }
    }
    let database_error = |e: crate::store::StoreError| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    };
    let store = match Store::connect(&db.connection, 1, db.acquire_timeout, db.statement_timeout) {
        Ok(store) => store,
        Err(e) => return database_error(e),
    };
    if let Err(e) = store.ready() {
        let pending = matches!(e, crate::store::StoreError::Migration(_));
        let code = database_error(e);
        if pending {
            eprintln!("hint: run `payhook migrate` (or start the service) first");
        }
        return code;
    }
    let at = |millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    match store.close_order(&project.to_string(), orderid) {
        Ok(Some((closed_at, true))) => {
            println!(
                "order {orderid} (project {project}) closed at {}: the missed-callback detector no longer counts it",
                at(closed_at)
            );
            ExitCode::SUCCESS
        }
        Ok(Some((closed_at, false))) => {
            println!(
                "order {orderid} (project {project}) was already closed at {}; nothing changed",
                at(closed_at)
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: no order {orderid} in project {project}");
            ExitCode::from(1)
        }
        Err(e) => database_error(e),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
