//! Daily: purge the users soft-deleted longer than `USER_RETENTION_DAYS`
//! ([`App::purge_deleted_users`], in `users::purge`).
//!
//! [`App::purge_deleted_users`]: crate::App::purge_deleted_users

use super::{Job, JobCx, JobError, JobFuture};
use crate::Ctx;

/// The purge job.
#[derive(Clone, Debug)]
pub struct PurgeUsers {
    pub retention_days: u32,
}

impl Job for PurgeUsers {
    fn name(&self) -> &'static str {
        "purge_users"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let cutoff = cx.now - chrono::Duration::days(i64::from(self.retention_days));
            let report = cx
                .app
                .purge_deleted_users(&Ctx::system(self.name()), cutoff)
                .await?;
            serde_json::to_value(&report).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
