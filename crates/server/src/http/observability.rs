//! Operator routes: `GET /metrics` (Prometheus text) and `GET /admin/debug/profile` (a CPU
//! flamegraph, admins only, off unless `PROFILING_ENABLED`). docs/observability.md.

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use domain::ErrorCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError, extract::Query};
use crate::auth::extract::{Admin, AuthRejection};

/// The Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Longest profile.
const MAX_PROFILE_SECONDS: u64 = 60;
/// Samples per second: a prime, so sampling does not beat with periodic work.
const PROFILE_FREQUENCY: i32 = 99;

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(profile))
}

/// The separate metrics listener (`METRICS_ADDR`): nothing but `/metrics`, no middleware
/// (no request ids, no rate limits: a scrape target only).
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(state)
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound).detail("no route matches this path")
}

async fn render(State(state): State<AppState>) -> Response {
    // The integrations gauge needs a GROUP BY over integrations: never per scrape (anyone
    // who can reach the scrape port could make us run it at will), but in the background,
    // at most once per METRICS_SAMPLE_INTERVAL_SECONDS. A scrape renders what is known.
    if state.metrics().is_some() {
        state.gauge_sampler().maybe_sample(state.app());
    }
    match state.metrics() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(PROMETHEUS_TEXT),
            )],
            crate::metrics::render(handle, state.app().storage()),
        )
            .into_response(),
        None => not_found().into_response(),
    }
}

/// Prometheus metrics (text exposition format). 404 when metrics are off, in production,
/// or when served on the separate `METRICS_ADDR` listener instead. Not rate limited, not in
/// the access log.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 404, description = "Metrics are off, or on METRICS_ADDR (always in production)", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Production serves metrics only on METRICS_ADDR: the API port is public, the scrape
    // port is for the network of the monitoring system.
    let observability = &state.config().observability;
    if observability.metrics_addr.is_some() || !state.config().is_development() {
        return not_found().into_response();
    }
    render(State(state)).await
}

/// Query of the profile route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProfileParams {
    /// Seconds to sample, 1 to 60 (default 10), and less than the request timeout.
    pub seconds: Option<u64>,
}

/// A CPU profile of the whole process as a flamegraph (SVG). Off unless
/// `PROFILING_ENABLED=true`: then 404 for everyone. One profile at a time (409 otherwise).
#[utoipa::path(get, path = "/admin/debug/profile", tag = "operations", params(ProfileParams),
    security(("clerk_session" = []), ("service_key" = [])),
    responses(
        (status = 200, description = "Flamegraph", body = String, content_type = "image/svg+xml"),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Profiling is off", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another profile is running", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    admin: Result<Admin, AuthRejection>,
    Query(p): Query<ProfileParams>,
) -> Response {
    if !state.config().observability.profiling_enabled {
        return not_found().into_response();
    }
    if let Err(rejection) = admin {
        return rejection.into_response();
    }
    let seconds = p.seconds.unwrap_or(10);
    let timeout = state.config().http.request_timeout.as_secs();
    if seconds == 0 || seconds > MAX_PROFILE_SECONDS || seconds >= timeout {
        return ApiError::new(ErrorCode::ValidationError)
            .detail(format!(
                "seconds must be from 1 to {} (and below REQUEST_TIMEOUT_SECONDS = {timeout})",
                MAX_PROFILE_SECONDS
            ))
            .into_response();
    }
    match crate::profiling::flamegraph(Duration::from_secs(seconds), PROFILE_FREQUENCY).await {
        Ok(svg) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            )],
            svg,
        )
            .into_response(),
        Err(crate::profiling::ProfileError::Busy) => ApiError::new(ErrorCode::Conflict)
            .detail("another profile is running; try again when it is done")
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Samples the integrations gauge in the background, at most once per interval, one
/// sample at a time.
pub struct GaugeSampler {
    interval: Duration,
    /// When the last sample started; `None`: never.
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl GaugeSampler {
    /// A sampler that starts at most one sample per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Starts a sample in the background unless one started within the interval.
    pub fn maybe_sample(&self, app: &app::App) {
        {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            let now = std::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < self.interval) {
                return;
            }
            *last = Some(now);
        }
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = app.sample_integration_gauges().await {
                // The last values stay; the next interval tries again.
                tracing::warn!(error = %e, "cannot sample the integrations gauge");
            }
        });
    }
}

impl std::fmt::Debug for GaugeSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeSampler")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}
