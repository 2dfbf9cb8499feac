//! Sending stored events: claim what is due (one claimer wins per delivery, on any
//! replica), POST the body with the Standard Webhooks headers, record the outcome. A 2xx
//! answer delivers; anything else retries after base · 2^(attempt−1) (plus up to 25 %
//! jitter, and at least a 429/503's `Retry-After`) until the last attempt, which is kept
//! as failed with its status and error.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use store::events::{self as q, Attempt, DueDelivery};
use tokio::{sync::Semaphore, task::JoinSet};

use super::Subscriber;
use crate::{App, AppError, jobs::Clock, outbound::Outbound};

/// Deliveries claimed per pass.
const BATCH: u64 = 100;
/// Sends in flight at once.
const CONCURRENCY: usize = 8;
/// How long a claim lasts: past the send timeout, so a live sender never loses it.
const CLAIM: Duration = Duration::from_secs(60);
/// Longest wait between attempts.
const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);
/// How often the worker looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// Delivered and failed events are kept this long.
const RETENTION_DAYS: i64 = 30;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub delivered: u32,
    pub retried: u32,
    pub failed: u32,
}

/// Sends due deliveries; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Dispatcher {
    app: App,
    http: Outbound,
    clock: Clock,
}

impl Dispatcher {
    /// A dispatcher over `app`'s outbox and subscribers.
    #[must_use]
    pub fn new(app: App) -> Self {
        // The app's outbound client: same timeouts, no redirects (a subscriber answers
        // where it was configured), trace context and metrics as peer `event_delivery`.
        let http = app.oauth_client().outbound().clone();
        Self {
            app,
            http,
            clock: Clock::default(),
        }
    }

    /// The clock deliveries are scheduled by (tests move it).
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Sends everything due now, `CONCURRENCY` at a time, until nothing is due.
    ///
    /// # Errors
    /// Storage.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, AppError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let due = q::due(self.app.db().writer(), now, BATCH).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let limit = Arc::new(Semaphore::new(CONCURRENCY));
            let mut sends = JoinSet::new();
            let mut claimed = 0;
            for d in due {
                let lease = now + chrono::Duration::from_std(CLAIM).unwrap_or_default();
                if !q::claim(self.app.db().writer(), d.id, now, lease).await? {
                    continue; // another worker has it
                }
                claimed += 1;
                let permit = Arc::clone(&limit);
                let this = self.sender();
                sends.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    this.attempt(d).await
                });
            }
            while let Some(done) = sends.join_next().await {
                match done {
                    Ok(Ok(Outcome::Delivered)) => report.delivered += 1,
                    Ok(Ok(Outcome::Retry)) => report.retried += 1,
                    Ok(Ok(Outcome::Failed)) => report.failed += 1,
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(AppError::Internal(format!("delivery task: {e}"))),
                }
            }
            if claimed == 0 {
                return Ok(report);
            }
        }
    }

    /// The worker: deliver what is due, then wait a poll interval, until `stop` turns
    /// true. Prunes old history once an hour.
    pub async fn work(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_prune: Option<DateTime<Utc>> = None;
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "delivering events failed; retrying at the next poll");
            }
            let now = self.clock.now();
            if last_prune.is_none_or(|t| now - t > chrono::Duration::hours(1)) {
                last_prune = Some(now);
                let before = now - chrono::Duration::days(RETENTION_DAYS);
                if let Err(e) = q::prune(self.app.db().writer(), before).await {
                    tracing::warn!(error = %e, "pruning delivered events failed");
                }
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    fn sender(&self) -> Sender {
        Sender {
            app: self.app.clone(),
            http: self.http.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// What a spawned send needs.
struct Sender {
    app: App,
    http: Outbound,
    clock: Clock,
}

enum Outcome {
    Delivered,
    Retry,
    Failed,
}

impl Sender {
    async fn attempt(&self, d: DueDelivery) -> Result<Outcome, AppError> {
        let settings = self.app.event_settings();
        let attempt_no = d.attempts.saturating_add(1);
        let last = u32::try_from(attempt_no).unwrap_or(u32::MAX) >= settings.max_attempts;
        let subscriber = settings
            .subscribers
            .iter()
            .find(|s| s.url.as_str() == d.subscriber_url);
        let (status_code, error, wait) = match subscriber {
            None => (
                None,
                Some("the subscriber is no longer configured".to_owned()),
                None,
            ),
            Some(s) => self.send(s, &d).await,
        };
        let now = self.clock.now();
        let (attempt, outcome) = match error {
            None => (
                Attempt::Delivered {
                    status_code: status_code.unwrap_or(200),
                },
                Outcome::Delivered,
            ),
            Some(error) if last || subscriber.is_none() => {
                tracing::warn!(event_type = %d.event_type, delivery = d.id, attempts = attempt_no,
                    error = %error, "event delivery failed for good");
                (Attempt::Failed { status_code, error }, Outcome::Failed)
            }
            Some(error) => {
                let delay =
                    backoff(settings.retry_base_delay, attempt_no).max(wait.unwrap_or_default());
                let next_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                (
                    Attempt::Retry {
                        status_code,
                        error,
                        next_at,
                    },
                    Outcome::Retry,
                )
            }
        };
        crate::metrics::event_delivery(match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        });
        q::finish(self.app.db().writer(), d.id, attempt, now).await?;
        Ok(outcome)
    }

    /// One POST: (status, error when not delivered, the subscriber's `Retry-After`).
    async fn send(
        &self,
        s: &Subscriber,
        d: &DueDelivery,
    ) -> (Option<i32>, Option<String>, Option<Duration>) {
        let body = body(d);
        let msg_id = d.event_id.to_string();
        // The signature's time is the real time of sending: verifiers refuse old ones.
        let ts = Utc::now().timestamp();
        let Ok(signature) = s.signer.sign(&msg_id, ts, body.as_bytes()) else {
            return (None, Some("the body could not be signed".to_owned()), None);
        };
        let request = self
            .http
            .http()
            .post(s.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, msg_id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, ts.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body)
            .build();
        let res = match request {
            Ok(request) => self.http.send("event_delivery", request).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(r) if r.status().is_success() => (Some(i32::from(r.status().as_u16())), None, None),
            Ok(r) => {
                let status = r.status();
                let wait = crate::integrations::oauth::answer::retry_after(status, r.headers());
                (
                    Some(i32::from(status.as_u16())),
                    Some(format!("the subscriber answered {}", status.as_u16())),
                    wait,
                )
            }
            // Without the URL: a subscriber's URL may carry a credential.
            Err(e) => (None, Some(transport_error(&e)), None),
        }
    }
}

/// The body every attempt of an event sends, byte for byte.
fn body(d: &DueDelivery) -> String {
    serde_json::json!({
        "type": d.event_type,
        "timestamp": d.event_created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": d.data,
    })
    .to_string()
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the subscriber did not answer in time".to_owned()
    } else if e.is_connect() {
        "the subscriber could not be reached".to_owned()
    } else {
        "the request to the subscriber failed".to_owned()
    }
}

/// Wait after failed attempt `attempt` (1-based): base · 2^(attempt−1), capped at a day,
/// plus up to 25 % so a recovered subscriber is not hit by every retry at once.
fn backoff(base: Duration, attempt: i32) -> Duration {
    crate::backoff::exponential(base, attempt, MAX_DELAY, 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_a_day() {
        let base = Duration::from_secs(5);
        for attempt in 1..=6 {
            let want = base * (1 << (attempt - 1));
            let got = backoff(base, attempt);
            assert!(got >= want && got <= want + want / 4, "{attempt}: {got:?}");
        }
        assert!(backoff(base, 40) <= MAX_DELAY + MAX_DELAY / 4);
    }
}
