//! The operator's commands: the journal, replays, a callback URL pasted from
//! the gateway's panel, an order's story, pruning. They work on the database
//! directly, with the service's configuration; no running service is needed.
//!
//! Exit codes: 0 done; 1 the thing asked for does not exist, or a replay
//! could not run; 2 usage or configuration; 3 the database failed.
//!
//! Everything they print of what is stored goes through [`terminal`]: no
//! control character of a hostile request reaches the operator's terminal.

pub mod terminal;

use std::process::ExitCode;

use crate::config::Settings;
use crate::domain::Outcome;
use crate::paysera::Verifier;
use crate::pipeline::actions::{self, ReplayError, Replayed};
use crate::pipeline::{Handled, Pipeline};
use crate::store::{DatabaseConfig, EventFilter, EventState, JournalFilter, Store, StoreError};
use terminal::{escape, or_dash};

/// Who the actions of the command line are logged as.
const ACTOR: &str = "cli";

/// What every command needs: the settings and an open, migrated store.
pub struct Operator {
    pub settings: Settings,
    pub store: Store,
}

pub fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn database_error(e: StoreError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(3)
}

fn not_found(what: &str) -> ExitCode {
    eprintln!("{what} not found");
    ExitCode::from(1)
}

impl Operator {
    /// Opens the configured database; never creates an empty SQLite file (that
    /// is a wrong `DATABASE_URL` or `PAYHOOK_DATA_DIR`, not an empty journal).
    pub fn open() -> Result<Operator, ExitCode> {
        let mut settings = Settings::from_env().map_err(|e| usage_error(&e.to_string()))?;
        crate::demo::provision(&mut settings).map_err(|e| usage_error(&e.to_string()))?;
        let db = &settings.database;
        if let DatabaseConfig::Sqlite { path } = &db.connection {
            if !path.exists() {
                return Err(usage_error(&format!(
                    "no database at {} (check DATABASE_URL / PAYHOOK_DATA_DIR)",
                    path.display()
                )));
            }
        }
        let store = Store::connect(&db.connection, 1, db.acquire_timeout, db.statement_timeout)
            .map_err(database_error)?;
        if let Err(e) = store.ready() {
            let pending = matches!(e, StoreError::Migration(_));
            let code = database_error(e);
            if pending {
                eprintln!("hint: run `payhook migrate` (or start the service) first");
            }
            return Err(code);
        }
        Ok(Operator { settings, store })
    }

    fn verifier(&self) -> Result<Verifier, ExitCode> {
        let gateway = &self.settings.gateway;
        gateway.verifier().map_err(|e| usage_error(&e.to_string()))
    }

    /// The pipeline, as the service runs it.
    fn pipeline(&self) -> Result<Pipeline, ExitCode> {
        self.settings
            .pipeline(self.store.clone())
            .map_err(|e| usage_error(&e.to_string()))
    }

    /// Runs `work` on a store handle under the same bound as a received
    /// callback (`Store::bounded`): past the statement time-out the answer is
    /// `TimedOut` and the transaction rolls back instead of committing later.
    fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        block_on(self.store.bounded(work))
    }

    /// `bounded`, for work that runs the pipeline.
    fn bounded_pipeline<T: Send + 'static>(
        &self,
        pipeline: &Pipeline,
        work: impl FnOnce(Pipeline) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        block_on(pipeline.bounded(work))
    }
}

/// A command's one bounded piece of database work, on a runtime of its own.
fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(work);
    // Work past its bound still holds a blocking thread: not waited for (it
    // rolls back on its own).
    runtime.shutdown_background();
    result
}

/// `90s`, `10m`, `2d` before now, as unix milliseconds.
pub fn since(text: &str) -> Result<i64, ExitCode> {
    let age = crate::config::parse_duration(text)
        .ok_or_else(|| usage_error(&format!("{text:?} is not a duration like 90s, 10m or 2d")))?;
    Ok(chrono::Utc::now().timestamp_millis() - age.as_millis() as i64)
}

pub fn parse_outcome(text: Option<&str>) -> Result<Option<Outcome>, ExitCode> {
    text.map(|t| {
        Outcome::parse(t).ok_or_else(|| {
            let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            usage_error(&format!("{t:?} is not an outcome ({})", all.join(", ")))
        })
    })
    .transpose()
}

fn print_json(value: &serde_json::Value) {
    match terminal::json(value, false) {
        Ok(text) => println!("{text}"),
        // A `Value` always serialises; kept total rather than unwrapped.
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

pub fn callbacks_list(
    outcome: Option<&str>,
    orderid: Option<String>,
    since_text: Option<&str>,
    limit: i64,
    json: bool,
) -> ExitCode {
    let outcome = match parse_outcome(outcome) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let since = match since_text.map(since).transpose() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if !(1..=10_000).contains(&limit) {
        return usage_error("--limit must be 1 to 10000");
    }
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let filter = JournalFilter {
        outcome,
        orderid,
        since,
        limit,
        api: None,
        before: None,
    };
    let rows = match op.bounded(move |store| store.journal(&filter)) {
        Ok(rows) => rows,
        Err(e) => return database_error(e),
    };
    if json {
        print_json(&serde_json::json!({ "callbacks": rows }));
    } else {
        println!(
            "{:>8}  {:<24}  {:<18}  {:<20}  {:>4}  reason",
            "id", "received_at", "outcome", "orderid", "http"
        );
        for r in &rows {
            println!(
                "{:>8}  {:<24}  {:<18}  {:<20}  {:>4}  {}",
                r.id,
                crate::store::rfc3339(r.received_at),
                escape(&r.outcome),
                or_dash(r.orderid.as_deref()),
                r.http_status,
                escape(r.reason.as_deref().unwrap_or(""))
            );
        }
    }
    ExitCode::SUCCESS
}

pub fn callbacks_show(id: i64, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let entry = match op.bounded(move |store| store.journal_entry(id)) {
        Ok(Some(entry)) => entry,
        Ok(None) => return not_found(&format!("callback {id}")),
        Err(e) => return database_error(e),
    };
    let pii = op.settings.logging.pii;
    let shown_fields = op
        .verifier()
        .ok()
        .and_then(|v| actions::decoded_fields(&v, &entry, pii));
    let raw = actions::shown_raw(&entry, pii);
    if json {
        let mut callback = serde_json::to_value(&entry).unwrap_or_default();
        callback["raw_query"] = raw.text.into();
        callback["raw_masked"] = raw.masked.into();
        print_json(&serde_json::json!({
            "callback": callback,
            "received_at": entry.received_at_rfc3339(),
            "fields": shown_fields,
        }));
        return ExitCode::SUCCESS;
    }
    println!("id           {}", entry.id);
    println!("received_at  {}", entry.received_at_rfc3339());
    println!("api          {}", escape(&entry.api));
    println!("method       {}", escape(&entry.method));
    println!("project      {}", or_dash(entry.project_id.as_deref()));
    println!("orderid      {}", or_dash(entry.orderid.as_deref()));
    println!("outcome      {}", escape(&entry.outcome));
    println!("reason       {}", or_dash(entry.reason.as_deref()));
    println!("answer       {}", entry.http_status);
    println!(
        "raw          {} bytes, sha256 {}{}{}",
        entry.raw_length.map_or("?".into(), |n| n.to_string()),
        or_dash(entry.raw_sha256.as_deref()),
        if entry.raw_truncated {
            " (only the beginning is stored)"
        } else {
            ""
        },
        if raw.masked {
            " (buyer data hidden; PAYHOOK_LOG_PII shows it)"
        } else {
            ""
        }
    );
    // A webhook's header lines are payhook's own framing (a header value
    // holds no line break); everything else is one escaped line, so stored
    // text cannot start a line of its own.
    let (headers, body) = match raw.text.split_once("\n\n") {
        Some((headers, body)) if entry.api == "checkout" => (Some(headers), body),
        _ => (None, raw.text.as_str()),
    };
    if let Some(headers) = headers {
        for line in headers.split('\n') {
            println!("{}", escape(line));
        }
        println!();
    }
    println!("{}", escape(body));
    match &shown_fields {
        Some(body) if entry.api == "checkout" => {
            println!("body:");
            println!("{}", terminal::json(body, true).unwrap_or_default());
        }
        Some(fields) => {
            println!("fields:");
            if let Some(map) = fields.as_object() {
                for (k, v) in map {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    println!("  {} = {}", escape(k), escape(&text));
                }
            }
        }
        None => println!("fields: (the stored request does not verify)"),
    }
    ExitCode::SUCCESS
}

/// Runs stored callbacks through the pipeline again, oldest first; each one is
/// stored as a new journal row with method `REPLAY`. Idempotent: a replayed
/// paid callback is a `duplicate`.
pub fn callbacks_replay(
    id: Option<i64>,
    since_text: Option<&str>,
    outcome: Option<&str>,
    json: bool,
) -> ExitCode {
    let outcome = match parse_outcome(outcome) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let ids = match (id, since_text) {
        (Some(id), None) => vec![id],
        (None, Some(text)) => {
            let since = match since(text) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match op.bounded(move |store| store.journal_ids_since(since, outcome)) {
                Ok(ids) => ids,
                Err(e) => return database_error(e),
            }
        }
        _ => return usage_error("give a callback id or --since (not both)"),
    };
    let pipeline = match op.pipeline() {
        Ok(pipeline) => pipeline,
        Err(code) => return code,
    };
    let mut failed = false;
    for id in ids {
        let pipeline = pipeline.clone();
        let replayed = op.bounded_pipeline(&pipeline, move |pipeline| {
            Ok(actions::replay(&pipeline, id, ACTOR))
        });
        match replayed.map_err(ReplayError::Store).and_then(|r| r) {
            Ok(replayed) => report(id, &replayed, json),
            Err(ReplayError::NotFound(_)) => return not_found(&format!("callback {id}")),
            Err(ReplayError::Store(e)) => return database_error(e),
            Err(why) => {
                failed = true;
                if json {
                    print_json(&serde_json::json!({"replayed": id, "error": why.to_string()}));
                } else {
                    println!("{id}\tnot replayed: {}", escape(&why.to_string()));
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(id: i64, replayed: &Replayed, json: bool) {
    let outcome = replayed.outcome_name();
    let reason = replayed.reason.as_deref();
    if json {
        print_json(&serde_json::json!({"replayed": id, "outcome": outcome, "reason": reason}));
    } else {
        match reason {
            Some(reason) => println!("{id}\t{outcome}\t{}", escape(reason)),
            None => println!("{id}\t{outcome}"),
        }
    }
}

/// A callback URL copied from the gateway's panel, run through the pipeline
/// and stored like a received callback, with method `INGEST`.
pub fn ingest_url(url: &str, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let pipeline = match op.pipeline() {
        Ok(pipeline) => pipeline,
        Err(code) => return code,
    };
    let url = url.to_string();
    let handled = match op.bounded_pipeline(&pipeline, move |pipeline| {
        actions::ingest_url(&pipeline, &url, ACTOR)
    }) {
        Ok(handled) => handled,
        Err(e) => return database_error(e),
    };
    let outcome = handled.outcome().map_or("error", Outcome::as_str);
    let reason = handled.reason();
    if json {
        print_json(&serde_json::json!({"outcome": outcome, "reason": reason}));
    } else {
        match &reason {
            Some(reason) => println!("{outcome}\t{}", escape(reason)),
            None => println!("{outcome}"),
        }
    }
    match handled {
        Handled::Done(..) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// The configured project an order belongs to (default: the first classic
/// one): a classic project's number, a Checkout project's client id or a
/// gateway's name.
fn project_of(settings: &Settings, project_id: Option<&str>) -> Result<String, ExitCode> {
    let gateway = &settings.gateway;
    let mut all = gateway
        .projects
        .iter()
        .map(|p| p.id.to_string())
        .chain(gateway.checkout.iter().map(|p| p.client_id.clone()))
        .chain(gateway.recipes.iter().map(|r| r.name.clone()));
    let project = match project_id {
        None => all.next(),
        Some(id) => all.find(|p| p == id),
    };
    project.ok_or_else(|| {
        usage_error(&format!(
            "project {} is not configured",
            project_id.unwrap_or("-")
        ))
    })
}

/// Confirms a captured gateway notification (`Pipeline::confirm`): exit 0
/// decided (the outcome is printed), 1 refused (the reason is printed), 2
/// usage or configuration error, 3 database error.
pub fn orders_confirm(orderid: &str, project_id: &str, callback: i64, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let project = match project_of(&op.settings, Some(project_id)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pipeline = match op.pipeline() {
        Ok(pipeline) => pipeline,
        Err(code) => return code,
    };
    let confirmed = {
        let orderid = orderid.to_string();
        op.bounded_pipeline(&pipeline.clone(), move |pipeline| {
            Ok(pipeline.confirm(&project, &orderid, callback, ACTOR))
        })
    };
    match confirmed {
        Ok(Ok(processed)) => {
            let outcome = processed.outcome.as_str();
            if json {
                print_json(&serde_json::json!({
                    "callback_id": processed.callback_id,
                    "outcome": outcome,
                    "reason": processed.reason,
                }));
            } else {
                match &processed.reason {
                    Some(reason) => println!(
                        "{outcome}\t{}\t(stored as callback {})",
                        escape(reason),
                        processed.callback_id
                    ),
                    None => println!("{outcome}\t(stored as callback {})", processed.callback_id),
                }
            }
            ExitCode::SUCCESS
        }
        Ok(Err(crate::pipeline::ConfirmError::Store(e))) | Err(e) => database_error(e),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Takes an order out of the missed-callback count.
pub fn orders_close(orderid: &str, project_id: Option<&str>) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let project = match project_of(&op.settings, project_id) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let at = |millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let closed = {
        let (project, orderid) = (project.clone(), orderid.to_string());
        op.bounded(move |store| actions::close_order(&store, &project, &orderid, ACTOR))
    };
    match closed {
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

/// `payhook erase --order ID`: the order's personal data erased now.
pub fn erase(orderid: &str, project_id: Option<&str>, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let project = match project_of(&op.settings, project_id) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pipeline = match op.pipeline() {
        Ok(pipeline) => pipeline,
        Err(code) => return code,
    };
    let erased = {
        let (project, orderid) = (project.clone(), orderid.to_string());
        op.bounded_pipeline(&pipeline.clone(), move |pipeline| {
            pipeline.erase_order(&project, &orderid, ACTOR)
        })
    };
    match erased {
        Ok(Some(rows)) => {
            if json {
                print_json(&serde_json::json!({
                    "project_id": project, "orderid": orderid, "rows_erased": rows,
                }));
            } else {
                println!(
                    "order {orderid} (project {project}): personal data erased from {rows} stored request(s)"
                );
            }
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: no order {orderid} in project {project}");
            ExitCode::from(1)
        }
        Err(e) => database_error(e),
    }
}

/// `payhook erase --email ADDR`: the personal data of every order whose
/// stored requests carry the address, erased now.
pub fn erase_email(email: &str, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    if !email.contains('@') {
        eprintln!("error: --email wants an e-mail address (name@domain)");
        return ExitCode::from(2);
    }
    let pipeline = match op.pipeline() {
        Ok(pipeline) => pipeline,
        Err(code) => return code,
    };
    // A pass over the whole unerased journal: each statement is bounded by
    // the server's statement time-out, the pass as a whole is not.
    match pipeline.erase_email(email, ACTOR) {
        Ok(erased) if erased.is_empty() => {
            eprintln!("error: no stored request (not erased yet) carries that address");
            ExitCode::from(1)
        }
        Ok(erased) => {
            if json {
                print_json(&serde_json::json!(erased));
            } else {
                for o in &erased.orders {
                    println!(
                        "order {} (project {}): personal data erased from {} stored request(s)",
                        o.orderid, o.project_id, o.rows_erased
                    );
                }
                if erased.rows_without_order > 0 {
                    println!(
                        "{} stored request(s) naming no order: personal data erased",
                        erased.rows_without_order
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => database_error(e),
    }
}

/// An order's story: its registration, state and flags, and every callback
/// with its outcome, oldest first.
pub fn orders_show(orderid: &str, project_id: Option<&str>, json: bool) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let project = match project_of(&op.settings, project_id) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let order = {
        let (project, orderid) = (project.clone(), orderid.to_string());
        op.bounded(move |store| store.order(&project, &orderid))
    };
    let order = match order {
        Ok(Some(order)) => order,
        Ok(None) => return not_found(&format!("order {orderid}")),
        Err(e) => return database_error(e),
    };
    if json {
        print_json(&serde_json::json!({ "order": order }));
        return ExitCode::SUCCESS;
    }
    println!(
        "order     {} (project {})",
        escape(&order.orderid),
        escape(&order.project_id)
    );
    println!(
        "expected  {}",
        escape(
            &order
                .expectation()
                .unwrap_or_else(|| "nothing registered".into())
        )
    );
    println!("state     {}", escape(&order.state));
    println!(
        "flags     {}",
        if order.flags.is_empty() {
            "-".into()
        } else {
            escape(&order.flags.join(", ")).into_owned()
        }
    );
    if let Some(refunded) = order.refunded_amount {
        println!("refunded  {refunded}");
    }
    for (label, at) in [
        ("fulfilled", order.fulfilled_at),
        ("returned", order.returned_at),
        ("closed", order.closed_at),
    ] {
        if let Some(at) = at {
            println!("{label:<9} {}", crate::store::rfc3339(at));
        }
    }
    let filter = EventFilter {
        after: 0,
        limit: 1000,
        kinds: None,
        state: None,
        order: Some((project.clone(), orderid.to_string())),
    };
    let events = op.bounded(move |store| store.events(&filter));
    let events = match events {
        Ok(events) => events,
        Err(e) => return database_error(e),
    };
    println!("callbacks:");
    for c in &order.callbacks {
        println!(
            "  {:>8}  {}  {:<18}  {:>4}  {}",
            c.id,
            crate::store::rfc3339(c.received_at),
            escape(&c.outcome),
            c.http_status,
            escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    println!("events:");
    for e in &events {
        println!(
            "  {:>8}  {}  {:<18}  {:<9}  {} attempt(s)",
            e.id,
            crate::store::rfc3339(e.created_at),
            escape(&e.kind),
            escape(&e.state),
            e.attempts
        );
        if let Ok(Some((_, attempts))) = {
            let id = e.id;
            op.bounded(move |store| store.event(id))
        } {
            for a in attempts {
                println!(
                    "            {}  {}  {} ms",
                    crate::store::rfc3339(a.attempted_at),
                    escape(
                        &a.status_code
                            .map(|s| s.to_string())
                            .or(a.error)
                            .unwrap_or_default()
                    ),
                    a.duration_ms
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// The shop's events, oldest first, by state.
pub fn events_list(state: Option<&str>, limit: i64, json: bool) -> ExitCode {
    let state = match state.map(|s| {
        EventState::parse(s)
            .ok_or_else(|| usage_error(&format!("{s:?} is not pending, delivered or dead")))
    }) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(code)) => return code,
    };
    if !(1..=10_000).contains(&limit) {
        return usage_error("--limit must be 1 to 10000");
    }
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    let filter = EventFilter {
        after: 0,
        limit,
        kinds: None,
        state,
        order: None,
    };
    let events = match op.bounded(move |store| store.events(&filter)) {
        Ok(events) => events,
        Err(e) => return database_error(e),
    };
    if json {
        let rows: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id, "kind": e.kind, "project_id": e.project_id,
                    "orderid": e.orderid, "state": e.state, "attempts": e.attempts,
                    "created_at": crate::store::rfc3339(e.created_at),
                })
            })
            .collect();
        print_json(&serde_json::json!({ "events": rows }));
    } else {
        println!(
            "{:>8}  {:<24}  {:<18}  {:<20}  {:<9}  attempts",
            "id", "created_at", "kind", "orderid", "state"
        );
        for e in &events {
            println!(
                "{:>8}  {:<24}  {:<18}  {:<20}  {:<9}  {}",
                e.id,
                crate::store::rfc3339(e.created_at),
                escape(&e.kind),
                or_dash(e.orderid.as_deref()),
                escape(&e.state),
                e.attempts
            );
        }
    }
    ExitCode::SUCCESS
}

/// Sends a delivered or dead event again: the same event, the same `webhook-id`.
pub fn events_retry(id: i64) -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    match op.bounded(move |store| actions::retry_event(&store, id, ACTOR)) {
        Ok(Some(event)) => {
            println!(
                "event {} is {} again: the worker sends it",
                event.id,
                escape(&event.state)
            );
            ExitCode::SUCCESS
        }
        Ok(None) => not_found(&format!("event {id}")),
        Err(e) => database_error(e),
    }
}

/// Deletes journal rows older than `older_than`, keeping every row of orders
/// that are paid, in review or refunded. A dry run unless `yes`.
pub fn prune(older_than: &str, yes: bool, json: bool) -> ExitCode {
    let cutoff = match since(older_than) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    // Batches, each bounded by the statement time-out; the pass is not.
    let count = match op.store.prune_journal(cutoff, !yes) {
        Ok(c) => c,
        Err(e) => return database_error(e),
    };
    if json {
        print_json(&serde_json::json!({
            "deleted": if yes { count.deletable } else { 0 },
            "would_delete": if yes { 0 } else { count.deletable },
            "kept": count.kept,
        }));
    } else if yes {
        println!(
            "deleted {} journal rows older than {older_than}; kept {} of paid, in-review or refunded orders",
            count.deletable, count.kept
        );
    } else {
        println!(
            "would delete {} journal rows older than {older_than} (dry run: add --yes); would keep {} of paid, in-review or refunded orders",
            count.deletable, count.kept
        );
    }
    ExitCode::SUCCESS
}

/// "Sign out everywhere": ends every console session, on every instance on
/// this database (the console's and the API's action: `actions::revoke_sessions`).
pub fn sessions_revoke() -> ExitCode {
    let op = match Operator::open() {
        Ok(op) => op,
        Err(code) => return code,
    };
    match op.bounded(|store| actions::revoke_sessions(&store, ACTOR)) {
        Ok(ended) => {
            println!("{ended} console session(s) ended");
            ExitCode::SUCCESS
        }
        Err(e) => database_error(e),
    }
}
