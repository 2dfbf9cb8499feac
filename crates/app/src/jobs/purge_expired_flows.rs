//! Hourly: delete the OAuth states and connect sessions that expired more than
//! `EXPIRED_FLOWS_GRACE_MINUTES` ago, in bounded batches ([`App::purge_expired_flows`],
//! in `integrations::expired`). Nothing else ever deletes them.
//!
//! [`App::purge_expired_flows`]: crate::App::purge_expired_flows

use std::time::Duration;

use super::{Job, JobCx, JobError, JobFuture};

/// The purge of expired flows.
#[derive(Clone, Debug)]
pub struct PurgeExpiredFlows {
    /// How long past its expiry a row is kept.
    pub grace: Duration,
    /// Rows per statement, and statements per table and run.
    pub batch_size: u64,
    pub max_batches: u64,
}

impl Job for PurgeExpiredFlows {
    fn name(&self) -> &'static str {
        "purge_expired_flows"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let grace = chrono::Duration::from_std(self.grace)
                .map_err(|e| JobError::permanent(format!("grace: {e}")))?;
            let report = cx
                .app
                .purge_expired_flows(cx.now - grace, self.batch_size, self.max_batches)
                .await?;
            serde_json::to_value(&report).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
