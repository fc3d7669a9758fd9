//! The events feed on the admin listener (bearer token): the same events the
//! shop is sent, for shops that poll instead, and for operators.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::admin::Admin;
use super::error::AdminError;
use super::AppState;
use crate::notify::event::{EventDetails, EventType, FeedEvent};
use crate::store::FeedPage;

/// Mounted in the admin listener's `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list_events))
        .route("/events/{id}", web::get().to(get_event))
        .route("/events/{id}/retry", web::post().to(retry_event));
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize)]
pub struct FeedQuery {
    after: Option<i64>,
    limit: Option<i64>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// `GET /api/v1/events?after=<position>&limit=<n>&type=<t>`: events in feed
/// order (their `position`, handed out after they committed), after the given
/// position; `next_after` is the position to ask after next time (the same
/// `after` when the page is empty).
pub async fn list_events(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, AdminError> {
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(AdminError::BadRequest(
            "after must be a feed position, 0 or more".into(),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let kinds = match query.event_type.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            EventType::parse(name)
                .ok_or_else(|| {
                    let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                    AdminError::BadRequest(format!(
                        "unknown type {name:?} (one of {})",
                        known.join(", ")
                    ))
                })?
                .kinds(),
        ),
    };
    let page = FeedPage {
        after,
        limit,
        kinds,
    };
    let rows = state.store.bounded(move |store| store.feed(&page)).await?;
    let next_after = rows.last().and_then(|r| r.feed_seq).unwrap_or(after);
    let events: Vec<FeedEvent> = rows.iter().map(FeedEvent::of).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": events, "next_after": next_after })))
}

/// `GET /api/v1/events/{id}`: the event with every attempt.
pub async fn get_event(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let found = state.store.bounded(move |store| store.event(id)).await?;
    let (row, attempts) = found.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(EventDetails::of(&row, attempts)))
}

/// `POST /api/v1/events/{id}/retry`: send it again, same id (`202`, the event
/// as it now stands).
pub async fn retry_event(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let row = state
        .store
        .bounded(move |store| {
            crate::pipeline::actions::retry_event(&store, id, super::admin::API_ACTOR)
        })
        .await?
        .ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Accepted().json(FeedEvent::of(&row)))
}
