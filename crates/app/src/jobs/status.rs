//! Job status for `GET /admin/jobs`: each registered job's schedule, its most recent
//! attempt, the next time it runs and what its last success reported.

use chrono::{DateTime, Utc};
use domain::job::RunStatus;
use serde::Serialize;
use serde_json::Value;
use store::jobs as q;

use super::Runner;
use crate::AppError;

/// A job as `GET /admin/jobs` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobStatus {
    pub name: String,
    /// The cron expression; `None`: runs only when asked.
    pub schedule: Option<String>,
    /// Start of the most recent attempt.
    pub last_run_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `retrying` (an attempt failed; another is scheduled) or `running`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    /// The earlier of the next tick and the next pending (or retry) run.
    pub next_run_at: Option<DateTime<Utc>>,
    /// What the last successful attempt reported (counts, files, notes).
    pub last_result: Option<Value>,
}

impl Runner {
    /// The status of every registered job.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn status(&self) -> Result<Vec<JobStatus>, AppError> {
        let conn = self.app.db().writer();
        let now = self.clock.now();
        let mut out = Vec::with_capacity(self.registry.jobs().len());
        for reg in self.registry.jobs() {
            let name = reg.job.name();
            let last = q::last_attempted(conn, name).await?;
            let pending = q::next_pending(conn, name).await?.map(|r| r.run_after);
            let tick = reg.schedule.as_ref().and_then(|c| c.next_after(now));
            let next_run_at = match (pending, tick) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let last_result = q::runs(conn, name, 50)
                .await?
                .into_iter()
                .find(|r| r.status == RunStatus::Succeeded)
                .and_then(|r| r.result);
            out.push(JobStatus {
                name: name.to_owned(),
                schedule: reg.schedule.as_ref().map(|c| c.as_str().to_owned()),
                last_run_at: last.as_ref().and_then(|r| r.started_at),
                last_outcome: last.as_ref().map(|r| {
                    match r.status {
                        RunStatus::Pending => "retrying",
                        other => other.as_str(),
                    }
                    .to_owned()
                }),
                last_error: last.and_then(|r| r.last_error),
                next_run_at,
                last_result,
            });
        }
        Ok(out)
    }
}
