//! Every 15 minutes: probe each integration not checked recently with its stored access
//! token (`App::probe_unchecked_integrations`, in `tokens::health`).

use chrono::Duration;

use super::{Job, JobCx, JobError, JobFuture};

/// The health check.
#[derive(Clone, Debug)]
pub struct IntegrationHealth {
    /// Integrations checked more recently than this are skipped.
    pub every: Duration,
    /// Most integrations probed in one run (the next run takes the rest).
    pub batch: u64,
}

impl Default for IntegrationHealth {
    fn default() -> Self {
        Self {
            every: Duration::minutes(15),
            batch: 500,
        }
    }
}

impl Job for IntegrationHealth {
    fn name(&self) -> &'static str {
        "integration_health"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let report = cx
                .app
                .probe_unchecked_integrations(cx.now, self.every, self.batch)
                .await?;
            serde_json::to_value(&report).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
