//! Background job runs (API.md "Jobs"): the states a run moves through.
//!
//! `pending` → `running` when a runner starts an attempt; `running` → `succeeded`, →
//! `failed` (for good), or back to `pending` when the attempt failed and another is
//! scheduled. A `running` run whose lease lapsed is taken over as if it were pending.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One run of a job (a tick of its schedule or a manual request) as the rest of the code
/// sees it. Built by `store` from its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    /// `cron:<tick>` or `manual:<id>`.
    pub run_key: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub status: RunStatus,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not attempted before this.
    pub run_after: DateTime<Utc>,
    /// The lease of the attempt under way.
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// What the successful attempt reported.
    pub result: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a job run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// An attempt is under way, under a lease.
    Running,
    Succeeded,
    /// Every attempt failed, or the failure was permanent.
    Failed,
}

wire_names!(RunStatus {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
});

#[cfg(test)]
mod tests {
    use super::RunStatus;

    #[test]
    fn names_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(RunStatus::parse("retrying"), None);
    }
}
