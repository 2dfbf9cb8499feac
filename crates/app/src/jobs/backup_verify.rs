//! Daily: prove a restorable backup exists ([`App::verify_backup`], in
//! `operations::backup`).
//!
//! [`App::verify_backup`]: crate::App::verify_backup

use super::{Job, JobCx, JobFuture};
use crate::operations::backup::BackupPolicy;

/// The backup verification job.
#[derive(Clone, Debug)]
pub struct BackupVerify {
    pub policy: BackupPolicy,
}

impl Job for BackupVerify {
    fn name(&self) -> &'static str {
        "backup_verify"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move { cx.app.verify_backup(&self.policy, cx.now, cx.run_id).await })
    }
}
