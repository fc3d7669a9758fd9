//! The admin API (JSON, bearer token): create payments, register orders, look
//! orders and callbacks up. Amounts are integers in minor units.

use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Gate, Refusal};
use super::error::{AdminError, ErrorBody, Refusals};
use super::AppState;
use crate::domain::{Amount, AmountMode, Currency, Outcome};
use crate::notify::event::project_id_schema;
use crate::paysera::{build_payment_request, Environment, ProjectCredentials, SPEC_VERSION};
use crate::pipeline::registration::{self, NewOrder, Registered};
use crate::pipeline::{actions, ConfirmError};
use crate::store::{CallbackRow, JournalFilter, OrderDetails, Store, StoreError};

/// Who the admin API's actions are logged as.
pub const API_ACTOR: &str = "api";

/// Present in a handler's arguments: the request carried the admin token,
/// from an address that has not used up its wrong tokens (`auth::Gate`).
pub struct Admin;

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Ready<Result<Admin, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req))
    }
}

fn authorize(req: &HttpRequest) -> Result<Admin, AdminError> {
    let (Some(state), Some(gate)) = (
        req.app_data::<web::Data<AppState>>(),
        req.app_data::<web::Data<Gate>>(),
    ) else {
        return Err(AdminError::Unauthorized);
    };
    // Any `Authorization` header offers a credential (and costs an attempt
    // when wrong); only a bearer token can be the right one. No header at all
    // guesses nothing and is not counted.
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(bearer_token).unwrap_or(""));
    match gate.check(gate.client(req), presented, &state.admin_token) {
        Ok(()) => Ok(Admin),
        Err(Refusal::Limited { retry_after }) => Err(AdminError::TooManyAttempts { retry_after }),
        Err(Refusal::Missing | Refusal::Wrong) => {
            state.metrics.admin_unauthorized("api");
            Err(AdminError::Unauthorized)
        }
    }
}

/// RFC 7235: the scheme is case-insensitive, then one or more spaces.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Every answer under `/api/` (errors, a 404 and a timed-out body included)
/// is kept out of caches and read only as what it says it is. Wraps the whole
/// admin listener, outermost, so that the body deadline's 408 has them too.
pub async fn api_headers<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let api = req.path() == "/api" || req.path().starts_with("/api/");
    let mut res = next.call(req).await?;
    if api {
        super::error::mark_api_answer(res.headers_mut());
    }
    Ok(res)
}

/// A path under `/api/v1` that names nothing: 404, as JSON like every other
/// answer of the API.
pub async fn not_found() -> Result<HttpResponse, AdminError> {
    Err(AdminError::NotFound)
}

/// How many console sessions a revocation ended.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Sessions that were still live.
    revoked: usize,
}

/// `POST /api/v1/sessions/revoke`: every console session ends, on every
/// instance ("sign out everywhere"); answers how many were still live.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/revoke",
    tag = "console",
    responses((status = 200, description = "every console session ended", body = Revoked), Refusals),
)]
pub async fn revoke_sessions(
    _: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let revoked = on_store(&state.store, move |store| {
        actions::revoke_sessions(&store, API_ACTOR)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Revoked { revoked }))
}

fn project(state: &AppState, requested: Option<u64>) -> Result<&ProjectCredentials, AdminError> {
    match requested {
        None => state
            .projects
            .first()
            .ok_or_else(|| AdminError::BadRequest("no project configured".into())),
        Some(id) => state
            .projects
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| AdminError::BadRequest(format!("project_id {id} is not configured"))),
    }
}

fn order_project(state: &AppState, requested: Option<&str>) -> Result<String, AdminError> {
    state
        .order_project(requested)
        .map_err(AdminError::BadRequest)
}

/// `project_id` in a JSON body: a number (classic) or a string (either).
fn project_id_of(value: Option<&Value>) -> Result<Option<String>, AdminError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AdminError::Invalid(
            "project_id must be a project number or a Checkout client id".into(),
        )),
    }
}

/// `test` in a JSON body: `true` or `false` (the default).
fn test_of(value: Option<&Value>) -> Result<bool, AdminError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // The classic request's own spelling, for `POST /payments`.
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 1) => Ok(n.as_u64() == Some(1)),
        Some(Value::String(s)) if s == "0" || s == "1" => Ok(s == "1"),
        Some(_) => Err(AdminError::Invalid("test must be true or false".into())),
    }
}

fn amount_of(value: Option<&Value>) -> Result<Amount, AdminError> {
    Ok(registration::amount(value.and_then(Value::as_i64))?)
}

fn currency_of(value: Option<&Value>) -> Result<Currency, AdminError> {
    Ok(registration::currency(value.and_then(Value::as_str))?)
}

/// `amount_mode` in a JSON body: `"fixed"` (the default) or `"payer_sets"`.
fn amount_mode_of(
    state: &AppState,
    project_id: &str,
    value: Option<&Value>,
) -> Result<AmountMode, AdminError> {
    let mode = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        // Not a word at all: refused with the words a wrong word gets.
        Some(_) => Some(""),
    };
    let checkout = state.is_checkout_project(project_id);
    Ok(registration::amount_mode(mode, project_id, checkout)?)
}

async fn register(
    state: &web::Data<AppState>,
    order: NewOrder,
    return_to: Option<(String, String)>,
) -> Result<Registered, AdminError> {
    on_store(&state.store, move |store| {
        let return_to = return_to.as_ref().map(|(t, u)| (t.as_str(), u.as_str()));
        Ok(registration::register(&store, &order, return_to, API_ACTOR))
    })
    .await?
    .map_err(AdminError::from)
}

/// Runs a store call on the blocking pool (diesel is synchronous), bounded
/// like a callback: a stalled database is answered 503, not waited for.
async fn on_store<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AdminError> {
    store.bounded(f).await.map_err(AdminError::from)
}

/// A payment request's fields (`POST /api/v1/payments`): the classic
/// request's own (protocol.md), of which payhook reads the ones named here;
/// every other field is signed into the request as given.
#[derive(ToSchema)]
#[allow(dead_code)] // The handler reads the fields as a map; this describes them.
pub struct PaymentRequest {
    /// The shop's order id, 1 to 40 bytes, no control character.
    #[schema(
        min_length = 1,
        max_length = 40,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    orderid: String,
    /// Minor units.
    #[schema(minimum = 0)]
    amount: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Where the buyer returns after paying, and after cancelling; where the
    /// gateway sends the callback.
    #[schema(format = "uri")]
    accepturl: String,
    #[schema(format = "uri")]
    cancelurl: String,
    #[schema(format = "uri")]
    callbackurl: String,
    /// A configured classic project's number (default: the first).
    #[schema(minimum = 0)]
    project_id: Option<u64>,
    /// A test payment.
    test: Option<bool>,
    /// The URL points at the gateway's sandbox.
    sandbox: Option<bool>,
}

/// A signed payment request: the URL to send the buyer to, and its parts.
#[derive(Serialize, ToSchema)]
pub struct SignedPayment {
    url: String,
    data: String,
    sign: String,
}

/// `POST /api/v1/payments`: validate the request fields, register the order,
/// return the signed payment URL.
#[utoipa::path(
    post,
    path = "/api/v1/payments",
    tag = "orders",
    request_body = PaymentRequest,
    responses(
        (status = 201, description = "the order is registered", body = SignedPayment),
        (status = 200, description = "registered before with the same values", body = SignedPayment),
        (status = 409, description = "registered before with other values", body = ErrorBody),
        (status = 413, description = "a body over 64 KiB", body = ErrorBody),
        (status = 422, description = "a field the gateway would refuse", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn create_payment(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, AdminError> {
    let mut fields = body.into_inner();
    let project_id = match fields.remove("project_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| AdminError::Invalid("project_id must be a number".into()))?,
        ),
    };
    let sandbox = matches!(fields.remove("sandbox"), Some(Value::Bool(true)));
    let project = project(&state, project_id)?.clone();
    let amount = amount_of(fields.get("amount"))?;
    let currency = currency_of(fields.get("currency"))?;
    let test = test_of(fields.get("test"))?;
    let orderid = match fields.get("orderid") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(AdminError::Invalid(
                "'orderid' is required but missing.".into(),
            ))
        }
    };

    // The well-known fields first, then the rest in name order.
    const FIRST: [&str; 6] = [
        "orderid",
        "amount",
        "currency",
        "accepturl",
        "cancelurl",
        "callbackurl",
    ];
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort_by_key(|k| {
        (
            FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()),
            k.to_string(),
        )
    });
    let mut params = Vec::with_capacity(names.len());
    for name in names {
        let text = match &fields[name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Null => continue,
            _ => {
                return Err(AdminError::Invalid(format!(
                    "'{name}' must be a string or a number"
                )))
            }
        };
        params.push((name.clone(), text));
    }
    let sign = |params: &[(String, String)]| {
        build_payment_request(
            project.id,
            project.password.expose_secret(),
            params,
            SPEC_VERSION,
        )
        .map_err(|e| AdminError::Invalid(e.to_string()))
    };
    let mut signed = sign(&params)?;

    // With a public URL, the buyer comes back through payhook, so a buyer who
    // returned without any paid callback following can be noticed.
    let shop_accept = params
        .iter()
        .find(|(k, _)| k == "accepturl")
        .map(|(_, v)| v.clone());
    let return_to = state
        .public_url
        .as_ref()
        .and(shop_accept)
        .map(|url| (hex::encode(rand::random::<[u8; 16]>()), url));
    let order = NewOrder {
        project_id: project.id.to_string(),
        orderid: order_id(orderid)?,
        amount,
        amount_mode: AmountMode::Fixed,
        currency,
        test,
    };
    let Registered {
        created,
        return_token,
    } = register(&state, order, return_to).await?;
    if let (Some(public), Some(token)) = (&state.public_url, return_token) {
        for (k, v) in params.iter_mut() {
            if k == "accepturl" {
                *v = format!("{public}/paysera/return/{token}");
            }
        }
        signed = sign(&params)?;
    }
    let env = if sandbox {
        Environment::Sandbox
    } else {
        Environment::Production
    };
    let reply = SignedPayment {
        url: signed.url(env),
        data: signed.data,
        sign: signed.sign,
    };
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(reply))
}

/// What an order must be paid. Read as JSON values, so that a wrong type is
/// refused with the field's rule (422) rather than the parser's words.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Minor units.
    #[schema(value_type = i64, minimum = 0)]
    amount: Value,
    #[schema(value_type = String, pattern = "^[A-Z]{3}$")]
    currency: Value,
    /// A classic project's number, or a Checkout project's client id
    /// (default: the first configured).
    #[schema(schema_with = project_id_schema, required = false)]
    project_id: Option<Value>,
    /// A test order (a Checkout webhook carries no test flag of its own).
    #[schema(value_type = Option<bool>)]
    test: Option<Value>,
    /// `"fixed"` (default): `amount` is what must be paid; `"payer_sets"`
    /// (Checkout): the least a payer who chooses the amount may pay.
    #[schema(schema_with = amount_mode_schema, required = false)]
    amount_mode: Option<Value>,
}

fn amount_mode_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([
            AmountMode::Fixed.as_str(),
            AmountMode::PayerSets.as_str(),
        ]))
        .build()
}

/// A registered order, as `PUT` registered it.
#[derive(Serialize, ToSchema)]
pub struct RegisteredOrder {
    orderid: String,
    /// Minor units.
    amount: i64,
    currency: String,
    #[schema(schema_with = project_id_schema)]
    project_id: Value,
    test: bool,
    #[schema(schema_with = amount_mode_schema)]
    amount_mode: String,
}

/// `PUT /api/v1/orders/{orderid}`: register an expectation only.
#[utoipa::path(
    put,
    path = "/api/v1/orders/{orderid}",
    tag = "orders",
    params(OrderPath),
    request_body = Expectation,
    responses(
        (status = 201, description = "the order is registered", body = RegisteredOrder),
        (status = 200, description = "registered before with the same values", body = RegisteredOrder),
        (status = 409, description = "registered before with other values", body = ErrorBody),
        (status = 413, description = "a body over 64 KiB", body = ErrorBody),
        (status = 422, description = "a field the gateway would refuse", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn put_order(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Expectation>,
) -> Result<HttpResponse, AdminError> {
    let orderid = order_id(path.into_inner())?;
    let requested = project_id_of(body.project_id.as_ref())?;
    let project_id = order_project(&state, requested.as_deref())?;
    let amount = amount_of(Some(&body.amount))?;
    let currency = currency_of(Some(&body.currency))?;
    let test = test_of(body.test.as_ref())?;
    let amount_mode = amount_mode_of(&state, &project_id, body.amount_mode.as_ref())?;
    let order = NewOrder {
        project_id: project_id.clone(),
        orderid: orderid.clone(),
        amount,
        amount_mode,
        currency: currency.clone(),
        test,
    };
    let created = register(&state, order, None).await?.created;
    // A classic project's id stays a number in the answer, as before.
    let shown: Value = project_id
        .parse::<u64>()
        .map_or_else(|_| project_id.clone().into(), Into::into);
    let reply = RegisteredOrder {
        orderid,
        amount: amount.minor_units(),
        currency: currency.as_str().to_string(),
        project_id: shown,
        test,
        amount_mode: amount_mode.as_str().to_string(),
    };
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(reply))
}

/// The order a path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the OpenAPI derive only: the handlers take a String.
pub struct OrderPath {
    /// The shop's order id, 1 to 40 bytes, no control character.
    #[param(
        min_length = 1,
        max_length = 40,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    orderid: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    /// A classic project's number, a Checkout project's client id or a
    /// gateway's name.
    project_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// A classic project's number or a Checkout project's client id.
    project_id: Option<String>,
    /// Only callbacks with an id below this one (the last page's
    /// `callbacks_before`).
    callbacks_before: Option<i64>,
}

/// `GET /api/v1/orders/{orderid}?callbacks_before=`: the order with its newest
/// callbacks (at most 50); `callbacks_before` pages to older ones.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{orderid}",
    tag = "orders",
    params(OrderPath, OrderQuery),
    responses(
        (status = 200, description = "the order with its newest callbacks", body = OrderDetails),
        (status = 404, description = "no such order", body = ErrorBody),
        (status = 422, description = "not an order id", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn get_order(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, AdminError> {
    let project = order_project(&state, query.project_id.as_deref())?;
    let orderid = order_id(path.into_inner())?;
    let before = query.callbacks_before;
    let order = on_store(&state.store, move |store| {
        store.order_page(&project, &orderid, before)
    })
    .await?;
    order
        .map(|o| HttpResponse::Ok().json(o))
        .ok_or(AdminError::NotFound)
}

/// `POST /api/v1/orders/{orderid}/close`: no callback is expected for the order
/// any more, so the missed-callback detector stops counting it. Idempotent; the
/// answer is the order as `GET` shows it.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{orderid}/close",
    tag = "orders",
    params(OrderPath, ProjectQuery),
    responses(
        (status = 200, description = "closed (or closed before): the order as GET shows it", body = OrderDetails),
        (status = 404, description = "no such order", body = ErrorBody),
        (status = 422, description = "not an order id", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn close_order(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ProjectQuery>,
) -> Result<HttpResponse, AdminError> {
    let project = order_project(&state, query.project_id.as_deref())?;
    let orderid = order_id(path.into_inner())?;
    let order = on_store(&state.store, move |store| {
        match actions::close_order(&store, &project, &orderid, API_ACTOR)? {
            Some(_) => store.order(&project, &orderid),
            None => Ok(None),
        }
    })
    .await?;
    order
        .map(|o| HttpResponse::Ok().json(o))
        .ok_or(AdminError::NotFound)
}

/// What `POST /api/v1/orders/{orderid}/erase` did.
#[derive(Serialize, ToSchema)]
pub struct ErasedOrder {
    project_id: String,
    orderid: String,
    /// Stored requests whose personal data this call erased (0: erased before).
    rows_erased: usize,
}

/// `POST /api/v1/orders/{orderid}/erase`: the order's personal data erased
/// from the journal now (docs/privacy.md), its accounting facts kept, and
/// the erasure recorded. Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{orderid}/erase",
    tag = "orders",
    params(OrderPath, ProjectQuery),
    responses(
        (status = 200, description = "erased (or erased before)", body = ErasedOrder),
        (status = 404, description = "no such order", body = ErrorBody),
        (status = 422, description = "not an order id", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn erase_order(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ProjectQuery>,
) -> Result<HttpResponse, AdminError> {
    let project = order_project(&state, query.project_id.as_deref())?;
    let orderid = order_id(path.into_inner())?;
    let (p, o) = (project.clone(), orderid.clone());
    let erased = state
        .pipeline
        .bounded(move |pipeline| pipeline.erase_order(&p, &o, API_ACTOR))
        .await?;
    erased
        .map(|rows_erased| {
            HttpResponse::Ok().json(ErasedOrder {
                project_id: project,
                orderid,
                rows_erased,
            })
        })
        .ok_or(AdminError::NotFound)
}

/// Which captured notification an operator confirms.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The stored notification (its id in `GET /api/v1/callbacks`), an
    /// outcome `captured` of this gateway and order.
    callback: i64,
}

/// What a confirmation came to.
#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    /// The journal row the confirmation was stored as (method `CONFIRM`).
    callback_id: i64,
    /// `fulfilled`, `duplicate` (confirmed before), `paid_again`, … (docs/api.md).
    outcome: &'static str,
    reason: Option<String>,
    /// The order as `GET` shows it.
    order: Option<OrderDetails>,
}

/// `POST /api/v1/orders/{orderid}/confirm?project_id=GATEWAY`: an operator
/// confirms a notification of a gateway without a recipe, after reviewing it:
/// the order is paid as registered, once (the same confirmation again is a
/// `duplicate`), and the shop is told.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{orderid}/confirm",
    tag = "orders",
    params(OrderPath, ProjectQuery),
    request_body = Confirmation,
    responses(
        (status = 200, description = "decided: the outcome, and the order", body = Confirmed),
        (status = 404, description = "no such callback", body = ErrorBody),
        (status = 409, description = "not a captured notification of this gateway and order, or the order is not registered", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "not an order id, or not a confirmation", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn confirm_order(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ProjectQuery>,
    body: web::Json<Confirmation>,
) -> Result<HttpResponse, AdminError> {
    let project = order_project(&state, query.project_id.as_deref())?;
    let orderid = order_id(path.into_inner())?;
    let callback = body.into_inner().callback;
    let confirmed = state
        .pipeline
        .bounded(move |pipeline| {
            let processed = match pipeline.confirm(&project, &orderid, callback, API_ACTOR) {
                Ok(processed) => processed,
                Err(e) => return Ok(Err(e)),
            };
            let order = pipeline.store().order(&project, &orderid)?;
            Ok(Ok(Confirmed {
                callback_id: processed.callback_id,
                outcome: processed.outcome.as_str(),
                reason: processed.reason,
                order,
            }))
        })
        .await?;
    match confirmed {
        Ok(c) => Ok(HttpResponse::Ok().json(c)),
        Err(ConfirmError::NotFound(_)) => Err(AdminError::NotFound),
        Err(ConfirmError::Store(e)) => Err(AdminError::Unavailable(e)),
        Err(e) => Err(AdminError::Conflict(e.to_string())),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// Only callbacks with this outcome (docs/api.md lists them).
    outcome: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Stored callbacks, newest first.
#[derive(Serialize, ToSchema)]
pub struct CallbackList {
    callbacks: Vec<CallbackRow>,
}

/// `GET /api/v1/callbacks?outcome=...&limit=...`, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/callbacks",
    tag = "callbacks",
    params(CallbackQuery),
    responses((status = 200, description = "stored callbacks, newest first", body = CallbackList), Refusals),
)]
pub async fn list_callbacks(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AdminError> {
    let outcome = match query.outcome.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            Outcome::parse(name)
                .ok_or_else(|| AdminError::BadRequest(format!("unknown outcome {name:?}")))?,
        ),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let filter = JournalFilter {
        outcome,
        limit,
        ..JournalFilter::default()
    };
    let rows = on_store(&state.store, move |store| store.journal(&filter)).await?;
    Ok(HttpResponse::Ok().json(CallbackList { callbacks: rows }))
}

fn order_id(orderid: String) -> Result<String, AdminError> {
    Ok(registration::order_id(orderid)?)
}

/// What a replay came to.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// The stored callback that was replayed.
    replayed: i64,
    /// The row the replay was stored as (`null`: a rejection's).
    callback_id: Option<i64>,
    /// Its outcome (docs/api.md lists them).
    outcome: &'static str,
    reason: Option<String>,
}

/// `POST /api/v1/callbacks/{id}/replay`: runs a stored callback through the
/// pipeline again (stored as a new row, method `REPLAY`) and answers what it
/// came to. Idempotent by nature: a replayed paid callback is a `duplicate`.
#[utoipa::path(
    post,
    path = "/api/v1/callbacks/{id}/replay",
    tag = "callbacks",
    params(("id" = i64, Path, description = "the stored callback's id")),
    responses(
        (status = 200, description = "what the replay came to", body = Replayed),
        (status = 404, description = "no such callback", body = ErrorBody),
        (status = 409, description = "the stored request cannot be replayed (only its beginning is stored, or it does not read)", body = ErrorBody),
        Refusals,
    ),
)]
pub async fn replay_callback(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let replayed = state
        .pipeline
        .bounded(move |pipeline| Ok(actions::replay(&pipeline, id, API_ACTOR)))
        .await?;
    match replayed {
        Ok(r) => Ok(HttpResponse::Ok().json(Replayed {
            replayed: id,
            callback_id: r.callback_id,
            outcome: r.outcome_name(),
            reason: r.reason,
        })),
        Err(actions::ReplayError::NotFound(_)) => Err(AdminError::NotFound),
        Err(actions::ReplayError::Store(e)) => Err(AdminError::Unavailable(e)),
        Err(e) => Err(AdminError::Conflict(e.to_string())),
    }
}
