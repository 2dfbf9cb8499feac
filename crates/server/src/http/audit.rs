//! Audit routes: `GET /audit` and `GET /audit/stats` (admin or `audit:read`), and
//! `GET /users/{user_ref}/audit` (owner or admin).

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use app::access::AsAuditReader;
use axum::{extract::FromRequestParts, http::request::Parts};
use domain::ErrorCode;

use super::{AppState, error::ApiError, extract::Query, meta::request_meta};
use crate::auth::{
    extract::{AuthRejection, require_caller},
    owned_user::OwnedUser,
};

/// A caller allowed to read the whole audit log: an admin, or a service key with
/// `audit:read`.
pub struct AuditReader(AsAuditReader);

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        require_caller(parts)
            .map_err(AuthRejection::into_api_error)?
            .as_audit_reader(request_meta(parts))
            .map(Self)
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Forbidden)
                    .detail("reading the audit log needs an admin or the audit:read permission")
            })
    }
}

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(user_audit))
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the hash chain.
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// `user`, `service`, `system` or `webhook`.
    pub actor_type: String,
    /// Clerk user id, service key name, job name or webhook source.
    pub actor_id: Option<String>,
    /// E.g. `user.updated`, `token.accessed`.
    pub action: String,
    pub user_id: Option<Uuid>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Non-secret facts about the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry (chained over `prev_hash`).
    pub hash: String,
}

impl From<domain::audit::AuditEntry> for AuditEntry {
    fn from(e: domain::audit::AuditEntry) -> Self {
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            action: e.action,
            user_id: e.user_id.map(Uuid::from),
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// A page of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries about this user (service id).
    pub user_id: Option<Uuid>,
    /// One action, e.g. `user.updated`.
    pub action: Option<String>,
    /// `user`, `service`, `system` or `webhook`.
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    /// From this time (inclusive, RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Until this time (exclusive, RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// 1–100, default 50.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Page of `GET /users/{user_ref}/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1–100, default 50.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Parameters of `GET /audit/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `action` or `day`.
    pub group_by: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One group of `GET /audit/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsItem {
    /// The action, or the UTC day `YYYY-MM-DD`.
    pub key: String,
    pub count: i64,
}

/// Counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub items: Vec<StatsItem>,
}

fn page(p: app::audit::query::AuditPage) -> Json<AuditPage> {
    Json(AuditPage {
        items: p.items.into_iter().map(Into::into).collect(),
        next_cursor: p.next_cursor,
    })
}

/// Audit entries, newest first (admin or `audit:read`).
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    security(("clerk_session" = []), ("service_key" = [])),
    responses((status = 200, body = AuditPage), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 422, description = "Bad filter value or limit", body = super::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    AuditReader(reader): AuditReader,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let q = app::audit::query::AuditQuery {
        user_id: p.user_id.map(domain::UserId::from_uuid),
        action: p.action,
        actor_type: p.actor_type,
        actor_id: p.actor_id,
        from: p.from,
        to: p.to,
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(page(state.app().list_audit(&reader, q).await?))
}

/// Counts by action or by day (admin or `audit:read`).
#[utoipa::path(get, path = "/audit/stats", tag = "audit", params(StatsParams),
    security(("clerk_session" = []), ("service_key" = [])),
    responses((status = 200, body = Stats), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    AuditReader(reader): AuditReader,
    Query(p): Query<StatsParams>,
) -> Result<Json<Stats>, ApiError> {
    let group_by = match p.group_by.as_str() {
        "action" => app::audit::query::GroupBy::Action,
        "day" => app::audit::query::GroupBy::Day,
        _ => {
            return Err(
                domain::ValidationErrors::single("group_by", "must be action or day").into(),
            );
        }
    };
    let rows = state
        .app()
        .audit_stats(&reader, group_by, p.from, p.to)
        .await?;
    Ok(Json(Stats {
        items: rows
            .into_iter()
            .map(|(key, count)| StatsItem { key, count })
            .collect(),
    }))
}

/// The entries about one user (owner or admin). The owner sees other actors' names but
/// not their IP addresses or user agents.
#[utoipa::path(get, path = "/users/{user_ref}/audit", tag = "audit", params(("user_ref" = String, Path, description = "user id, Clerk user id, or `me`"), PageParams),
    security(("clerk_session" = []), ("service_key" = [])),
    responses((status = 200, body = AuditPage), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 422, description = "Bad limit", body = super::error::Problem)))]
pub async fn user_audit(
    State(state): State<AppState>,
    owned: OwnedUser,
    Query(p): Query<PageParams>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(page(
        state
            .app()
            .user_audit(&owned.owner, &owned.user.clerk_user_id, p.limit, p.cursor)
            .await?,
    ))
}
