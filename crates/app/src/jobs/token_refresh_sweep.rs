//! Hourly: refresh ahead of expiry every token that would expire before the next sweep
//! (plus a buffer), so hand-outs rarely wait on a provider ([`App::sweep_expiring_tokens`]).
//!
//! [`App::sweep_expiring_tokens`]: crate::App::sweep_expiring_tokens

use chrono::Duration;

use super::{Job, JobCx, JobError, JobFuture};

/// The refresh sweep.
#[derive(Clone, Debug)]
pub struct TokenRefreshSweep {
    /// How far ahead to look: the sweep interval plus a buffer.
    pub horizon: Duration,
    /// Refreshes in flight per provider.
    pub per_provider: usize,
    /// Most integrations looked at in one run (the next run takes the rest).
    pub batch: u64,
}

impl Default for TokenRefreshSweep {
    fn default() -> Self {
        Self {
            horizon: Duration::minutes(70),
            per_provider: 4,
            batch: 5_000,
        }
    }
}

impl Job for TokenRefreshSweep {
    fn name(&self) -> &'static str {
        "token_refresh_sweep"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let report = cx
                .app
                .sweep_expiring_tokens(cx.now, self.horizon, self.per_provider, self.batch)
                .await?;
            serde_json::to_value(&report).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
