//! The metrics of the use cases, and the catalogue the use cases record through (token
//! accesses, refreshes, OAuth exchanges, integrations, event deliveries, outgoing calls).
//! Everything goes through the `metrics` facade: a no-op until the server installs its
//! Prometheus recorder, so use cases and their tests need no setup.
//!
//! Every name starts with `user_service_`. Label values are bounded: fixed words, provider
//! names from configuration, service-key names an admin created; never a user id, an
//! e-mail, a token or a raw path. Callers pass `&'static str` outcomes for that reason.
//! The full list with types and labels is in `docs/observability.md`.

use std::collections::BTreeSet;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};

/// Counter: Clerk webhook deliveries by `type` and `outcome`.
pub const CLERK_WEBHOOKS: &str = "user_service_clerk_webhooks_total";
/// Counter: sign-ins (`session.created` events processed).
pub const SIGN_INS: &str = "user_service_sign_ins_total";
/// Counter: preference changes by `category` (one per category a change touched).
pub const PREFERENCE_CHANGES: &str = "user_service_preference_changes_total";
/// Counter: token reads by services, by `provider`, `service` and `outcome`.
pub const TOKEN_ACCESSES: &str = "user_service_token_accesses_total";
/// Counter: calls through the provider proxy by `provider` and `status` (the provider's
/// status code, or the problem type when no answer was forwarded).
pub const PROXIED_REQUESTS: &str = "user_service_proxied_requests_total";
/// Counter: OAuth token refreshes by `provider` and `outcome` (`ok`, `error`,
/// `reauth_required`).
pub const TOKEN_REFRESHES: &str = "user_service_token_refreshes_total";
/// Counter: OAuth code exchanges by `provider` and `outcome`.
pub const OAUTH_EXCHANGES: &str = "user_service_oauth_exchanges_total";
/// Gauge: integrations by `provider` and `status`.
pub const INTEGRATIONS: &str = "user_service_integrations";
/// Counter: outgoing HTTP calls by `peer` and `outcome` (status class or `error`).
pub const OUTGOING_REQUESTS: &str = "user_service_outgoing_requests_total";
/// Histogram: outgoing HTTP call durations in seconds, same labels.
pub const OUTGOING_DURATION: &str = "user_service_outgoing_request_duration_seconds";
/// Counter: outgoing event delivery attempts by `outcome` (`delivered`, `retry`, `failed`).
pub const EVENT_DELIVERIES: &str = "user_service_event_deliveries_total";
/// Counter: background job runs by `job` and `outcome` (recorded by the jobs runner).
pub const JOB_RUNS: &str = "user_service_job_runs_total";
/// Histogram: background job durations by `job` and `outcome` (recorded by the jobs runner).
pub const JOB_DURATION: &str = "user_service_job_duration_seconds";
/// Counter: expired rows deleted by the `purge_expired_flows` job, by `table`.
pub const EXPIRED_ROWS_DELETED: &str = "user_service_expired_rows_deleted_total";

/// Counter: audit entries the database refused as they were, by the `form` they were kept
/// in (`escaped`, `stub`) or `lost` (see `audit::access_log::rescue`).
pub const AUDIT_ENTRIES_REJECTED: &str = "user_service_audit_entries_rejected_total";
/// Counter: token hand-outs refused (503) because their audit entry did not commit, by
/// `reason` (`queue_full`, `timeout`, `lost`).
pub const AUDIT_UNAVAILABLE: &str = "user_service_audit_unavailable_total";

/// The Clerk event types we count by name; any other type is counted as `other`, so a
/// sender cannot grow the label set.
const KNOWN_CLERK_TYPES: [&str; 4] = [
    "user.created",
    "user.updated",
    "user.deleted",
    "session.created",
];

/// One Clerk delivery: its event type (bounded here) and what became of it.
pub fn clerk_webhook(kind: &str, outcome: &'static str) {
    let kind = KNOWN_CLERK_TYPES
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("other");
    counter!(CLERK_WEBHOOKS, "type" => kind, "outcome" => outcome).increment(1);
}

/// A sign-in (a processed `session.created`).
pub fn sign_in() {
    counter!(SIGN_INS).increment(1);
}

/// A committed preference change touching `paths` (`ui.theme`, …): one count per category.
/// Paths come from validated documents, so categories are the schema's.
pub fn preference_change<'a>(paths: impl IntoIterator<Item = &'a str>) {
    let categories: BTreeSet<&str> = paths
        .into_iter()
        .map(|p| p.split('.').next().unwrap_or(p))
        .collect();
    for category in categories {
        counter!(PREFERENCE_CHANGES, "category" => category.to_owned()).increment(1);
    }
}

/// A service read a user's token of `provider`.
pub fn token_access(provider: &str, service: &str, outcome: &'static str) {
    counter!(TOKEN_ACCESSES, "provider" => provider.to_owned(), "service" => service.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// One call through the provider proxy to `provider` ended with `status`.
pub fn proxied(provider: &str, status: &str) {
    counter!(PROXIED_REQUESTS, "provider" => provider.to_owned(), "status" => status.to_owned())
        .increment(1);
}

/// A refresh of a `provider` token ended with `outcome` (`ok`, `error`, `reauth_required`).
pub fn token_refresh(provider: &str, outcome: &'static str) {
    counter!(TOKEN_REFRESHES, "provider" => provider.to_owned(), "outcome" => outcome).increment(1);
}

/// An OAuth authorization-code exchange with `provider` ended with `outcome`.
pub fn oauth_exchange(provider: &str, outcome: &'static str) {
    counter!(OAUTH_EXCHANGES, "provider" => provider.to_owned(), "outcome" => outcome).increment(1);
}

/// Sets the number of integrations of `provider` in `status` (sampled from storage).
#[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
pub fn set_integrations(provider: &str, status: &'static str, count: u64) {
    gauge!(INTEGRATIONS, "provider" => provider.to_owned(), "status" => status).set(count as f64);
}

/// Sets the pool gauges of `db` from the size of each pool now.
pub(crate) fn set_pool_gauges(db: &store::Db) {
    for p in db.pool_stats() {
        gauge!(store::metrics::DB_POOL_IN_USE, "pool" => p.pool).set(f64::from(p.in_use()));
        gauge!(store::metrics::DB_POOL_IDLE, "pool" => p.pool).set(f64::from(p.idle));
        gauge!(store::metrics::DB_POOL_MAX, "pool" => p.pool).set(f64::from(p.max));
    }
}

/// One outgoing HTTP call to `peer` ended with `status` (`None`: no answer).
pub fn outgoing(peer: &str, status: Option<u16>, started: std::time::Instant) {
    let outcome = match status {
        None => "error",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
    };
    let peer = peer.to_owned();
    counter!(OUTGOING_REQUESTS, "peer" => peer.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!(OUTGOING_DURATION, "peer" => peer, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// One attempt to deliver an outgoing event ended with `outcome`.
pub fn event_delivery(outcome: &'static str) {
    counter!(EVENT_DELIVERIES, "outcome" => outcome).increment(1);
}

/// An audit entry the database refused was kept as `form` (`escaped`, `stub`) or `lost`.
pub fn audit_entry_rejected(form: &'static str) {
    counter!(AUDIT_ENTRIES_REJECTED, "form" => form).increment(1);
}

/// A caller was refused because its audit entry did not commit, for `reason`.
pub fn audit_unavailable(reason: &'static str) {
    counter!(AUDIT_UNAVAILABLE, "reason" => reason).increment(1);
}

/// `count` expired rows of `table` were deleted.
pub fn expired_rows_deleted(table: &'static str, count: u64) {
    counter!(EXPIRED_ROWS_DELETED, "table" => table).increment(count);
}

/// Describes every metric of this catalogue to the installed recorder (HELP lines).
pub fn describe() {
    describe_counter!(
        CLERK_WEBHOOKS,
        "Clerk webhook deliveries by event type and outcome"
    );
    describe_counter!(
        SIGN_INS,
        "Sign-ins (Clerk session.created events processed)"
    );
    describe_counter!(
        PREFERENCE_CHANGES,
        "Committed preference changes by category"
    );
    describe_counter!(
        TOKEN_ACCESSES,
        "Token reads by provider, calling service and outcome"
    );
    describe_counter!(
        PROXIED_REQUESTS,
        "Calls through the provider proxy by provider and status"
    );
    describe_counter!(
        TOKEN_REFRESHES,
        "OAuth token refreshes by provider and outcome"
    );
    describe_counter!(
        OAUTH_EXCHANGES,
        "OAuth code exchanges by provider and outcome"
    );
    describe_gauge!(INTEGRATIONS, "Integrations by provider and status");
    describe_counter!(
        EVENT_DELIVERIES,
        "Outgoing event delivery attempts by outcome"
    );
    describe_counter!(
        AUDIT_ENTRIES_REJECTED,
        "Audit entries the database refused, by the safe form they were written in (or lost)"
    );
    describe_counter!(
        AUDIT_UNAVAILABLE,
        "Requests refused because their audit entry did not commit, by reason"
    );
    describe_counter!(JOB_RUNS, "Background job runs by job and outcome");
    describe_histogram!(
        JOB_DURATION,
        metrics::Unit::Seconds,
        "Background job durations"
    );
    describe_counter!(
        EXPIRED_ROWS_DELETED,
        "Expired OAuth states and connect sessions deleted, by table"
    );
    describe_histogram!(
        vault::metrics::VAULT_OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Vault seal/open durations"
    );
    describe_histogram!(
        store::metrics::DB_QUERY_DURATION,
        metrics::Unit::Seconds,
        "Database statement durations by operation and table"
    );
    describe_gauge!(
        store::metrics::DB_POOL_IN_USE,
        "Database connections in use"
    );
    describe_gauge!(store::metrics::DB_POOL_IDLE, "Idle database connections");
    describe_gauge!(
        store::metrics::DB_POOL_MAX,
        "Largest size of each database pool"
    );
}
