//! Daily: the usage counts of the previous UTC day ([`App::compute_usage`], in
//! `operations::usage`).
//!
//! [`App::compute_usage`]: crate::App::compute_usage

use chrono::Duration;
use serde_json::json;

use super::{Job, JobCx, JobFuture};

/// The usage analytics job.
#[derive(Clone, Copy, Debug)]
pub struct UsageAnalytics;

impl Job for UsageAnalytics {
    fn name(&self) -> &'static str {
        "usage_analytics"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let day = (cx.now - Duration::days(1)).date_naive();
            let n = cx.app.compute_usage(day).await?;
            Ok(json!({"day": day.to_string(), "counts": n}))
        })
    }
}
