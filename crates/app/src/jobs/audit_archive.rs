//! Weekly: audit entries older than `AUDIT_RETENTION_DAYS` go to a compressed file, then
//! out of the database ([`App::archive_audit`] writes and syncs the file before deleting,
//! so an interrupted run only leaves a file that the next run rewrites).

use std::path::PathBuf;

use super::{Job, JobCx, JobError, JobFuture};

/// The audit archive job.
#[derive(Clone, Debug)]
pub struct AuditArchive {
    pub retention_days: u32,
    pub dir: PathBuf,
}

impl Job for AuditArchive {
    fn name(&self) -> &'static str {
        "audit_archive"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let cutoff = cx.now - chrono::Duration::days(i64::from(self.retention_days));
            let report = cx.app.archive_audit(cutoff, &self.dir).await?;
            serde_json::to_value(&report).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
