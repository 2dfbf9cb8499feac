//! Usage counts (the daily `usage_analytics` job): counts of a UTC day (users, active
//! users, sign-ins, preference changes, integrations by provider and status) stored in
//! `usage_stats`, replacing any earlier computation of that day in one transaction (so
//! reruns are harmless).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::{App, AppError};

/// One stored count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageCount {
    pub metric: String,
    /// E.g. `google/active` for integrations; empty when the metric has none.
    pub dimension: String,
    pub value: i64,
}

impl App {
    /// Computes and stores the counts of `day` (UTC); returns how many were stored.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn compute_usage(&self, day: NaiveDate) -> Result<usize, AppError> {
        let from = day
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| AppError::Internal("invalid day".to_owned()))?
            .and_utc();
        let counts =
            store::usage::compute(self.db().reader(), from, from + Duration::days(1)).await?;
        let n = counts.len();
        let txn = self.db().begin().await?;
        store::usage::replace_day(&txn, &day.to_string(), counts, chrono::Utc::now()).await?;
        txn.commit().await?;
        Ok(n)
    }

    /// The stored counts of `day` (for `/internal/integrations/stats` and reports).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn usage_stats(&self, day: NaiveDate) -> Result<Vec<UsageCount>, AppError> {
        Ok(store::usage::day(self.db().reader(), &day.to_string())
            .await?
            .into_iter()
            .map(|s| UsageCount {
                metric: s.metric,
                dimension: s.dimension,
                value: s.value,
            })
            .collect())
    }
}
