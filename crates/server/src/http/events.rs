//! Event delivery routes (admin only): `GET /admin/events/deliveries` to see what was sent,
//! what waits and what failed, and `POST /admin/events/deliveries/{id}/retry` to send a
//! failed one again once its subscriber is fixed. API.md leaves these to us
//! (docs/events.md).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Path, Query},
};
use crate::auth::extract::Admin;

const LIMIT: app::page::PageLimit = app::page::PageLimit {
    default: 50,
    max: 200,
};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

/// Filters of the delivery list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One delivery of one event to one subscriber.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryItem {
    pub id: i64,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: Uuid,
    /// E.g. `user.updated`; `null` when the event was purged since.
    pub event_type: Option<String>,
    pub subscriber_url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// When a pending delivery is tried next.
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed (never a secret).
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Admin: deliveries, newest first.
#[utoipa::path(get, path = "/admin/events/deliveries", tag = "events",
    params(DeliveryParams),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "Bad status, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Admin { admin, .. }: Admin,
    Query(p): Query<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = LIMIT.check(p.limit)?;
    let before = p.cursor.as_deref().map(app::page::cursor_id).transpose()?;
    let rows = state
        .app()
        .event_deliveries(&admin, p.status.as_deref(), before, limit)
        .await?;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|d| d.id.to_string()))
        .flatten();
    let items = rows
        .into_iter()
        .map(|d| DeliveryItem {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            subscriber_url: d.subscriber_url,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        })
        .collect();
    Ok(Json(DeliveryList { items, next_cursor }))
}

/// What a retry did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedDelivery {
    pub id: i64,
    /// Always `pending`: a worker sends it within seconds.
    pub status: &'static str,
}

/// Admin: send a failed delivery again, with a fresh set of attempts.
#[utoipa::path(post, path = "/admin/events/deliveries/{id}/retry", tag = "events",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Queued again", body = RetriedDelivery),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery has not failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Admin { admin, .. }: Admin,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<RetriedDelivery>), ApiError> {
    state.app().retry_event_delivery(&admin, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RetriedDelivery {
            id,
            status: domain::event::DeliveryStatus::Pending.as_str(),
        }),
    ))
}
