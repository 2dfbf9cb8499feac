//! Operations routes: liveness and readiness.

use axum::{Json, extract::State};
use domain::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// Liveness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The running version.
    pub version: &'static str,
    /// `ok` or `error`: whether the database answered (liveness does not fail on it).
    #[schema(example = "ok")]
    pub database: &'static str,
}

/// Readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// `ok`.
    pub database: &'static str,
    /// `ok`, `degraded` (Redis down: local limits in use) or `not_configured`.
    pub redis: &'static str,
    /// `ok`, `error` or `not_configured`: the read replica (`DATABASE_READ_URL`). An
    /// `error` does not fail readiness: only reads that may lag go there.
    #[schema(example = "not_configured")]
    pub database_replica: &'static str,
}

fn check_str(c: app::operations::health::Check) -> &'static str {
    match c {
        app::operations::health::Check::Ok => "ok",
        app::operations::health::Check::Error => "error",
    }
}

/// Liveness: the process serves. Reports the database, but stays 200 when it is down.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let database = check_str(state.app().database_check().await);
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        database,
    })
}

/// Readiness: the database answers and migrations are current; 503 once shutdown began.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = Ready),
        (status = 503, description = "Not ready, or shutting down", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::new(ErrorCode::ServiceUnavailable).detail("shutting down"));
    }
    let r = state.app().readiness().await;
    if r.database != app::operations::health::Check::Ok {
        return Err(ApiError::new(ErrorCode::ServiceUnavailable).detail("database: not answering"));
    }
    match r.schema {
        app::operations::health::Schema::Current => {}
        app::operations::health::Schema::Pending(names) => {
            return Err(ApiError::new(ErrorCode::ServiceUnavailable).detail(format!(
                "database: migrations pending: {} (run `user-service migrate`)",
                names.join(", ")
            )));
        }
        app::operations::health::Schema::Unreadable => {
            return Err(ApiError::new(ErrorCode::ServiceUnavailable)
                .detail("database: migration status unreadable"));
        }
    }
    Ok(Json(Ready {
        status: "ready",
        database: "ok",
        redis: state.redis_status(),
        database_replica: r.replica.map_or("not_configured", check_str),
    }))
}
