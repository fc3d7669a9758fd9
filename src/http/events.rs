//! The events feed on the admin listener (bearer token): the same events the
//! shop is sent, for shops that poll instead, and for operators.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use super::error::{AdminError, ErrorBody, Refusals};
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// A feed position: events placed after it (default 0, the start).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only events of this type (`order.fulfilled`, ...; docs/notifications.md).
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
pub struct FeedAnswer {
    events: Vec<FeedEvent>,
    /// The position to ask after next time (the same `after` when the page
    /// is empty).
    next_after: i64,
}

/// `GET /api/v1/events?after=<position>&limit=<n>&type=<t>`: events in feed
/// order (their `position`, handed out after they committed), after the given
/// position; `next_after` is the position to ask after next time (the same
/// `after` when the page is empty).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(FeedQuery),
    responses((status = 200, description = "a page of the feed", body = FeedAnswer), Refusals),
)]
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
    Ok(HttpResponse::Ok().json(FeedAnswer { events, next_after }))
}

/// `GET /api/v1/events/{id}`: the event with every attempt.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = i64, Path, description = "the event's id")),
    responses(
        (status = 200, description = "the event with every attempt", body = EventDetails),
        (status = 404, description = "no such event", body = ErrorBody),
        Refusals,
    ),
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/retry",
    tag = "events",
    params(("id" = i64, Path, description = "the event's id")),
    responses(
        (status = 202, description = "pending again: the worker sends it", body = FeedEvent),
        (status = 404, description = "no such event", body = ErrorBody),
        Refusals,
    ),
)]
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
