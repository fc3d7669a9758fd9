//! `/healthz`: the process answers. `/readyz`: it can take callbacks now.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.accepting.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("shutting down");
    }
    match state.store.bounded(move |store| store.ready()).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().body("database not ready")
        }
    }
}

/// Prometheus text format, on the admin listener.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (content_type, body) = state.metrics.render();
    HttpResponse::Ok().content_type(content_type).body(body)
}
