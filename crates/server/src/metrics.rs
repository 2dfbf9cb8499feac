//! Prometheus metrics of the server: the process-wide recorder (installed once, rendered by
//! our own `/metrics` route or listener: the exporter's built-in listener is not compiled),
//! HTTP request metrics, rate-limit refusals, the description of outgoing calls, build info, and the database
//! pool gauges sampled at scrape time. The use-case catalogue is `app::metrics`; the full
//! list is in `docs/observability.md`.
//!
//! Labels are bounded: the route *template* (`/users/{id}`, `unmatched` when no route
//! matched), the method (`OTHER` for non-standard ones), the status class, fixed words.

use std::{sync::OnceLock, time::Duration};

use axum::http::{Method, StatusCode};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests by `method`, `route` and `status` class (`2xx` … `5xx`).
pub const HTTP_REQUESTS: &str = "user_service_http_requests_total";
/// Histogram: HTTP request durations in seconds, same labels.
pub const HTTP_DURATION: &str = "user_service_http_request_duration_seconds";
/// Gauge: HTTP requests being handled.
pub const HTTP_IN_FLIGHT: &str = "user_service_http_requests_in_flight";
/// Counter: requests refused with 429, by `principal` kind (`user`, `service`, `anonymous`).
pub const RATE_LIMITED: &str = "user_service_rate_limited_requests_total";
// Outgoing calls are recorded by `app::outbound`; described here with the HTTP metrics.
pub use app::metrics::{OUTGOING_DURATION, OUTGOING_REQUESTS};
/// Gauge: client connections open (docs/reliability.md "Slow and oversized clients").
pub const HTTP_CONNECTIONS_OPEN: &str = "user_service_http_connections_open";
/// Counter: client connections closed by a limit, by `reason`: `header_timeout`, `idle`,
/// `over_limit` (refused at the connection cap).
pub const HTTP_CONNECTIONS_CLOSED: &str = "user_service_http_connections_closed_total";
/// Gauge: always 1, labelled with `version` and `commit` of this build.
pub const BUILD_INFO: &str = "user_service_build_info";

/// Histogram buckets (seconds) of every duration: 0.5 ms to 10 s. Buckets (not summaries)
/// so Prometheus can aggregate across replicas and compute p99 with `histogram_quantile`.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The git commit this binary was built from (see `build.rs`).
pub const GIT_COMMIT: &str = env!("USER_SERVICE_GIT_COMMIT");

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder; later calls (more apps in one test
/// process) return the same handle. `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            spawn_upkeep(handle.clone());
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => GIT_COMMIT)
                .set(1.0);
            Some(handle)
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`UPKEEP_INTERVAL`], on a thread of its
/// own (the recorder is process-wide; test runtimes come and go). A recorder made with
/// `build_recorder` (we serve `/metrics` ourselves) runs no upkeep: each histogram keeps
/// every sample until the next scrape, so memory grew with the request count wherever
/// nothing scraped (the benchmark's RSS rose every round).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the metrics upkeep thread did not start; histograms are folded at scrape time only");
    }
}

/// True once the recorder is installed: request metrics are skipped before (no label work
/// for a no-op recorder).
fn enabled() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// The text exposition, with the pool gauges of `db` sampled now.
#[must_use]
pub fn render(handle: &PrometheusHandle, db: &app::storage::Database) -> String {
    db.sample_pool_gauges();
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status class"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request durations"
    );
    describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being handled");
    describe_counter!(RATE_LIMITED, "Requests refused with 429 by principal kind");
    describe_counter!(
        crate::auth::failures::AUTH_FAILURES,
        "Failed authentications by kind; throttled: refused unchecked (client IP over its failure limit)"
    );
    describe_counter!(OUTGOING_REQUESTS, "Outgoing HTTP calls by peer and outcome");
    describe_histogram!(
        OUTGOING_DURATION,
        metrics::Unit::Seconds,
        "Outgoing HTTP call durations"
    );
    describe_gauge!(HTTP_CONNECTIONS_OPEN, "Client connections open");
    describe_counter!(
        HTTP_CONNECTIONS_CLOSED,
        "Client connections closed by a limit (header_timeout, idle, over_limit)"
    );
    describe_gauge!(BUILD_INFO, "Build information: version and git commit");
    app::metrics::describe();
}

/// Counts a request in flight until dropped (also when the request future is cancelled).
pub struct InFlight(bool);

impl InFlight {
    /// Starts counting.
    #[must_use]
    pub fn start() -> Self {
        let on = enabled();
        if on {
            gauge!(HTTP_IN_FLIGHT).increment(1.0);
        }
        Self(on)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0 {
            gauge!(HTTP_IN_FLIGHT).decrement(1.0);
        }
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// `2xx` … `5xx`.
#[must_use]
pub fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// One finished request. `route` is the matched template; `None`: no route matched.
pub fn http_request(method: &Method, route: Option<&str>, status: StatusCode, elapsed: Duration) {
    if !enabled() {
        return;
    }
    let labels = [
        ("method", method_label(method).to_owned()),
        ("route", route.unwrap_or("unmatched").to_owned()),
        ("status", status_class(status).to_owned()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// A request refused by the rate limiter.
pub fn rate_limited(principal: &'static str) {
    counter!(RATE_LIMITED, "principal" => principal).increment(1);
}

/// A client connection was accepted.
pub fn connection_opened() {
    if enabled() {
        gauge!(HTTP_CONNECTIONS_OPEN).increment(1.0);
    }
}

/// An accepted client connection has closed.
pub fn connection_dropped() {
    if enabled() {
        gauge!(HTTP_CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// A client connection was closed (or refused) by a limit.
pub fn connection_closed(reason: &'static str) {
    if enabled() {
        counter!(HTTP_CONNECTIONS_CLOSED, "reason" => reason).increment(1);
    }
}
