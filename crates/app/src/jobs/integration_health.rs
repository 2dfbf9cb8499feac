//! Every 15 minutes: probe the provider's user-info endpoint with the stored access token
//! of each integration not checked recently. A token the provider no longer accepts gets a
//! refresh through the token service, so a revoked grant becomes `reauth_required` (with
//! its audit entry) before a service asks for it; a failing provider changes nothing.

use chrono::Duration;
use serde_json::json;

use super::{Job, JobCx, JobFuture};
use crate::{AppError, Ctx};

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
            let due = store::token_refresh::unchecked_since(
                cx.app.db().current(),
                cx.now - self.every,
                self.batch,
            )
            .await
            .map_err(AppError::from)?;
            let ctx = Ctx::system("integration_health");
            let (mut healthy, mut repaired, mut reauth, mut unavailable) = (0u64, 0u64, 0u64, 0u64);
            for (user, provider) in &due {
                let user = domain::UserId::from_uuid(*user);
                match cx.app.check_integration(&ctx, user, provider).await {
                    Ok(crate::tokens::diagnostics::Health::Healthy) => healthy += 1,
                    Ok(crate::tokens::diagnostics::Health::Repaired) => repaired += 1,
                    Err(AppError::ReauthorizationRequired(_)) => reauth += 1,
                    Ok(crate::tokens::diagnostics::Health::Unavailable) | Err(_) => unavailable += 1,
                }
            }
            Ok(
                json!({"checked": due.len(), "healthy": healthy, "repaired": repaired,
                "reauth_required": reauth, "unavailable": unavailable}),
            )
        })
    }
}
