//! The axum middleware: counts each request against its principal (or client IP), answers
//! 429 `rate_limited` with `Retry-After` when over the limit, and puts `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` on every limited response.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::ErrorCode;

use super::{Decision, RateLimiter, Subject};
use crate::{auth::Principal, http::error::ApiError};

/// `RateLimit-Limit`: the per-minute limit.
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests still allowed now.
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the budget is full again.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Paths never limited (API.md): probes and scrapes must not be throttled.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The middleware. Use with `axum::middleware::from_fn_with_state(limiter, rate_limit)`,
/// layered so that it runs after authentication.
pub async fn rate_limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    if is_exempt(req.uri().path()) {
        return next.run(req).await;
    }
    // Owned (no borrow of the request across the await): a clone of an `Arc<str>` for a
    // service, one small string for a user, nothing for an IP.
    let subject = match req.extensions().get::<Principal>() {
        Some(p) => Subject::of(p),
        None => Subject::anonymous(client_ip(&req, limiter.trust_forwarded_for())),
    };
    let decision = limiter.check(&subject).await;
    if !decision.allowed {
        crate::metrics::rate_limited(subject.kind().as_str());
        let retry = whole_seconds(decision.retry_after).max(1);
        let mut res = ApiError::new(ErrorCode::RateLimited)
            .detail(format!(
                "too many requests: at most {} per minute; retry in {retry} s",
                decision.limit
            ))
            .into_response();
        set_headers(res.headers_mut(), &decision);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return res;
    }
    let mut res = next.run(req).await;
    set_headers(res.headers_mut(), &decision);
    res
}

fn set_headers(h: &mut HeaderMap, d: &Decision) {
    h.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(d.limit));
    h.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(d.remaining));
    h.insert(
        RATELIMIT_RESET.clone(),
        HeaderValue::from(whole_seconds(d.reset)),
    );
}

/// Seconds, rounded up: a client that waits this long is never early.
pub(super) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The client's IP: the peer address, or, only when `trust_forwarded_for` (the service
/// runs behind a proxy that appends the address it saw), the last `X-Forwarded-For`
/// entry. Earlier entries are whatever the client sent and are never trusted.
#[must_use]
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let last = req
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = last {
            return ip;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}
