//! The operator console: server-rendered pages under `/ui/` on the admin
//! listener, for people who would rather not read JSON. Sign-in with the admin
//! token makes a session kept in the database and bound to that token
//! (`session`); every action goes through the same code as the CLI and the
//! admin API (`pipeline::actions`), is logged with the session's handle, and runs
//! once per form (a nonce claimed in the database), so a double click replays
//! once.

mod error;
mod pages;
mod session;
mod views;

use std::time::Duration;

use actix_web::web;

pub use error::ConsoleError;

/// What the console needs beyond the service's shared state.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// `PAYHOOK_UI_SESSION_TTL`
    pub session_ttl: Duration,
    /// The cookie is `Secure` (`PAYHOOK_UI_SECURE_COOKIE`, or an https
    /// `PAYHOOK_ADMIN_URL`, or without one an https `PAYHOOK_PUBLIC_URL`).
    pub secure_cookie: bool,
    /// The running admin token's fingerprint (`http::auth::token_fingerprint`):
    /// only sessions made with it are sessions.
    pub token_fingerprint: String,
    /// The missed-callback detector's window, for the overview's count
    /// (`MISSED_CALLBACK_AFTER`, `MISSED_CALLBACK_WINDOW`).
    pub missed_after: Duration,
    pub missed_window: Duration,
}

/// The largest form body a console page reads.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Mounted on the admin listener; needs `web::Data` of `AppState`,
/// `ConsoleSettings` and `http::auth::Gate`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(pages::to_overview)).service(
        web::scope("/ui")
            .app_data(
                web::FormConfig::default()
                    .limit(MAX_FORM_BYTES)
                    .error_handler(|e, _| {
                        ConsoleError::BadRequest(format!("invalid form: {e}")).into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ConsoleError::BadRequest(format!("invalid query: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ConsoleError::BadRequest(format!("invalid path: {e}")).into()
            }))
            .route("/static/payhook.css", web::get().to(pages::stylesheet))
            .route("/login", web::get().to(pages::login_form))
            .route("/login", web::post().to(pages::login))
            .route("/logout", web::post().to(pages::logout))
            .route("/sessions/revoke", web::post().to(pages::revoke_sessions))
            .route("/", web::get().to(pages::overview))
            .route("/callbacks", web::get().to(pages::callbacks))
            .route("/callbacks/{id}", web::get().to(pages::callback))
            .route("/callbacks/{id}/replay", web::post().to(pages::replay))
            .route("/callbacks/{id}/confirm", web::post().to(pages::confirm))
            .route("/orders", web::get().to(pages::order_search))
            .route("/orders", web::post().to(pages::register_order))
            .route("/orders/{orderid}", web::get().to(pages::order))
            .route("/orders/{orderid}/close", web::post().to(pages::close))
            .route("/orders/{orderid}/erase", web::post().to(pages::erase))
            .route("/notifications", web::get().to(pages::notifications))
            .route("/check", web::get().to(pages::check_page))
            .route("/check", web::post().to(pages::self_check))
            .route("/events/{id}/retry", web::post().to(pages::retry))
            .route(
                "/notifications/test",
                web::post().to(pages::send_test_event),
            ),
    );
}
