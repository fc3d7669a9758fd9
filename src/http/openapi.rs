//! The admin API's contract, as an OpenAPI 3.1 document generated from the
//! handlers' annotations and the types they answer with (utoipa), so it
//! cannot drift from the code: served at `GET /api/v1/openapi.json`, written
//! to `docs/openapi.json` by `payhook openapi` (a test holds the committed
//! copy to the generated one).

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::Components;
use utoipa::{Modify, OpenApi};

use super::{admin, error, events};
use crate::notify::event::{EventDetails, FeedEvent, Notification};
use crate::store::{AttemptRow, CallbackRow, OrderDetails};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "payhook admin API",
        description = "Registering orders and payment requests, the callback journal and the \
                       events feed, on payhook's admin listener. Every operation but this \
                       document's takes `Authorization: Bearer $PAYHOOK_ADMIN_TOKEN`; ten \
                       wrong tokens in five minutes from one address are answered 429. \
                       Amounts are integers in minor units. docs/api.md says the rest.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        admin::create_payment,
        admin::put_order,
        admin::get_order,
        admin::close_order,
        admin::erase_order,
        admin::confirm_order,
        admin::list_callbacks,
        admin::replay_callback,
        admin::revoke_sessions,
        events::list_events,
        events::get_event,
        events::retry_event,
        document,
    ),
    components(schemas(
        error::ErrorBody,
        admin::PaymentRequest,
        admin::SignedPayment,
        admin::Expectation,
        admin::RegisteredOrder,
        admin::CallbackList,
        admin::Replayed,
        admin::Confirmation,
        admin::Confirmed,
        admin::ErasedOrder,
        admin::Revoked,
        events::FeedAnswer,
        OrderDetails,
        CallbackRow,
        Notification,
        FeedEvent,
        EventDetails,
        AttemptRow,
    )),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
)]
struct AdminApi;

/// The admin token as the document's one security scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("PAYHOOK_ADMIN_TOKEN"))
                .build(),
        );
        openapi
            .components
            .get_or_insert_with(Components::new)
            .add_security_scheme("admin_token", scheme);
    }
}

/// The document, as pretty JSON with a final newline (what
/// `docs/openapi.json` holds).
pub fn document_json() -> String {
    let mut json = AdminApi::openapi()
        .to_pretty_json()
        // Built from literals and derived schemas: it always serialises.
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// `GET /api/v1/openapi.json`: this contract. Served without the token: it
/// is the repository's `docs/openapi.json`, and a client generator must read
/// it before it has a token to send.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "contract",
    security(()),
    responses((status = 200, description = "this document", content_type = "application/json")),
)]
pub async fn document() -> HttpResponse {
    // The same bytes for the life of the process: built on the first request.
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(document_json).as_str())
}
