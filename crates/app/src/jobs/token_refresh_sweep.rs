//! Hourly: refresh ahead of expiry every token that would expire before the next sweep
//! (plus a buffer), so hand-outs rarely wait on a provider. Each refresh goes through the
//! token service (single flight with on-demand refreshes, the same failure rules);
//! concurrency is bounded per provider so one sweep never floods a provider.

use std::{collections::HashMap, sync::Arc};

use chrono::Duration;
use serde_json::json;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{Job, JobCx, JobFuture};
use crate::{AppError, Ctx, tokens::TokenRequest};

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
            let due = store::token_refresh::expiring_before(
                cx.app.db().current(),
                cx.now + self.horizon,
                self.batch,
            )
            .await
            .map_err(AppError::from)?;
            let mut limits: HashMap<String, Arc<Semaphore>> = HashMap::new();
            let mut tasks = JoinSet::new();
            for (user, provider) in due.iter().cloned() {
                let permit = limits
                    .entry(provider.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_provider)))
                    .clone();
                let app = cx.app.clone();
                let horizon = self.horizon;
                tasks.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    let req = TokenRequest {
                        user: domain::UserId::from_uuid(user),
                        provider,
                        scopes: Vec::new(),
                        min_validity: horizon,
                        force: false,
                    };
                    app.sweep_refresh(&Ctx::system("token_refresh_sweep"), &req)
                        .await
                });
            }
            let (mut refreshed, mut failed, mut reauth) = (0u64, 0u64, 0u64);
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(true)) => refreshed += 1,
                    Ok(Ok(false)) => {}
                    Ok(Err(AppError::ReauthorizationRequired(_))) => reauth += 1,
                    Ok(Err(_)) | Err(_) => failed += 1,
                }
            }
            Ok(
                json!({"due": due.len(), "refreshed": refreshed, "failed": failed,
                "reauth_required": reauth}),
            )
        })
    }
}
