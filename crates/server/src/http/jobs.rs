//! Job routes (admin only): `GET /admin/jobs` and `POST /admin/jobs/{name}/run`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::Path,
};
use crate::auth::extract::Admin;

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(run_job))
}

/// One job and how it last went.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobItem {
    /// E.g. `purge_users`.
    pub name: String,
    /// Cron expression (UTC); `null`: runs only when asked.
    pub schedule: Option<String>,
    /// Start of the most recent attempt.
    pub last_run_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `retrying` or `running`.
    pub last_outcome: Option<String>,
    /// The error of the most recent attempt, when it failed.
    pub last_error: Option<String>,
    /// The next tick or pending retry.
    pub next_run_at: Option<DateTime<Utc>>,
    /// What the last successful run reported (counts, files; for backups, what was checked).
    #[schema(value_type = Option<Object>)]
    pub last_result: Option<serde_json::Value>,
}

/// `{"items": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<JobItem>,
}

/// A run that was enqueued.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedRun {
    /// The job.
    pub name: String,
    /// The run's id.
    pub run_id: i64,
    /// Always `pending`: a worker picks it up.
    pub status: &'static str,
}

/// Admin: every registered job with its schedule and last outcome.
#[utoipa::path(get, path = "/admin/jobs", tag = "jobs",
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_jobs(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<JobList>, ApiError> {
    let items = state
        .jobs()
        .status()
        .await?
        .into_iter()
        .map(|s| JobItem {
            name: s.name,
            schedule: s.schedule,
            last_run_at: s.last_run_at,
            last_outcome: s.last_outcome,
            last_error: s.last_error,
            next_run_at: s.next_run_at,
            last_result: s.last_result,
        })
        .collect();
    Ok(Json(JobList { items }))
}

/// Admin: enqueue a run of the job now; a worker runs it (never while another run of the
/// same job is in progress).
#[utoipa::path(post, path = "/admin/jobs/{name}/run", tag = "jobs",
    params(("name" = String, Path, description = "The job's name, e.g. `purge_users`")),
    responses(
        (status = 202, description = "Enqueued", body = EnqueuedRun),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No job has this name", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_job(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<EnqueuedRun>), ApiError> {
    let run_id = state.jobs().enqueue_now(&name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EnqueuedRun {
            name,
            run_id,
            status: domain::job::RunStatus::Pending.as_str(),
        }),
    ))
}
