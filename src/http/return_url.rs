//! `GET /paysera/return/{token}`: the buyer is back from the gateway. Remember
//! it (a paid callback should follow) and send them on to the shop's page with
//! whatever the gateway appended.

use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;

pub async fn buyer_returned(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let token = path.into_inner();
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return HttpResponse::NotFound().body("unknown return link");
    }
    let store = state.store.clone();
    match state
        .store
        .bounded(move || store.mark_returned(&token))
        .await
    {
        Ok(Some(shop_url)) => {
            let query = req.query_string();
            let target = if query.is_empty() {
                shop_url
            } else if shop_url.contains('?') {
                format!("{shop_url}&{query}")
            } else {
                format!("{shop_url}?{query}")
            };
            HttpResponse::Found()
                .insert_header(("Location", target))
                .finish()
        }
        Ok(None) => HttpResponse::NotFound().body("unknown return link"),
        Err(e) => {
            tracing::error!(error = %e, "buyer return not recorded");
            HttpResponse::ServiceUnavailable().body("temporarily unavailable, please reload")
        }
    }
}
