//! The token service seen from outside a hand-out: the stats route and the integrations
//! gauge.

use chrono::{Duration, Utc};
use domain::integration::IntegrationStatus;
use store::token_refresh;

use crate::{
    App, AppError,
    access::{AsService, IntegrationsRead},
};

/// Integrations by provider and status, and how refreshes went over the last 24 hours.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IntegrationStats {
    pub items: Vec<StatsItem>,
    pub refreshes_24h: RefreshCounts,
    /// successes / attempts over the last 24 h; `null` without attempts.
    pub refresh_success_rate_24h: Option<f64>,
}

/// One (provider, status) count.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StatsItem {
    pub provider: String,
    pub status: IntegrationStatus,
    pub count: i64,
}

/// Refresh attempts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RefreshCounts {
    pub success: i64,
    pub failure: i64,
}

impl App {
    /// Sets the integrations gauge (by provider and status) from storage, for a scrape.
    /// Providers outside the catalog and unknown statuses are not reported (bounded labels).
    ///
    /// # Errors
    /// Storage.
    pub async fn sample_integration_gauges(&self) -> Result<(), AppError> {
        for (provider, status, n) in
            token_refresh::count_by_provider_status(self.db().reader()).await?
        {
            if self.catalog().get(&provider).is_none() {
                continue;
            }
            crate::metrics::set_integrations(
                &provider,
                status.as_str(),
                u64::try_from(n).unwrap_or(0),
            );
        }
        Ok(())
    }

    /// `GET /internal/integrations/stats`.
    ///
    /// # Errors
    /// Storage.
    pub async fn integration_stats(
        &self,
        _service: &AsService<IntegrationsRead>,
    ) -> Result<IntegrationStats, AppError> {
        let reader = self.db().reader();
        let items = token_refresh::count_by_provider_status(reader)
            .await?
            .into_iter()
            .map(|(provider, status, count)| StatsItem {
                provider,
                status,
                count,
            })
            .collect();
        let mut refreshes = RefreshCounts::default();
        for (outcome, n) in
            token_refresh::refresh_outcomes_since(reader, Utc::now() - Duration::hours(24)).await?
        {
            match outcome.as_str() {
                "success" => refreshes.success += n,
                _ => refreshes.failure += n,
            }
        }
        let attempts = refreshes.success + refreshes.failure;
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate = (attempts > 0).then(|| refreshes.success as f64 / attempts as f64);
        Ok(IntegrationStats {
            items,
            refreshes_24h: refreshes,
            refresh_success_rate_24h: rate,
        })
    }
}
