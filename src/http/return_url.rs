//! `GET /paysera/return/{token}`: the buyer is back from the gateway. Send
//! them on to the shop's page with whatever the gateway appended, and, only
//! when what it appended is a verified paid callback of this very order,
//! remember that they came back (a paid callback should follow; the
//! missed-callback detector counts from then).
//!
//! Anyone can open a return link (its token is readable in the payment
//! request's `data`), so a visit alone proves nothing: a bare visit, garbage,
//! another order's callback or an unpaid status records nothing, and the
//! buyer is redirected all the same. Nothing of the request is stored.

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
    let query = req.query_string();
    let paid = state.pipeline.paid_return(query);
    match state
        .store
        .bounded(move |store| store.mark_returned(&token, paid.as_ref()))
        .await
    {
        Ok(Some(shop_url)) => {
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
