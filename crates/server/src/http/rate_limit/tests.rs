//! GCRA arithmetic on a controlled clock, keying, client IP, and the middleware on a router
//! whose tiny test layer plays authentication (inserts a `Principal`).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request},
    http::StatusCode,
    middleware::{Next, from_fn, from_fn_with_state},
    routing::get,
};
use domain::user::ClerkUserId;
use governor::clock::FakeRelativeClock;
use tower::ServiceExt;

use super::{
    Kind, RateLimiter, RedisStatus, Subject, local::LocalLimiter, middleware::whole_seconds,
};
use crate::{
    auth::{Principal, UserPrincipal},
    config::RateLimitConfig,
};

fn limits(user: u32, service: u32, anonymous: u32) -> RateLimitConfig {
    RateLimitConfig {
        user_per_minute: user,
        service_per_minute: service,
        anonymous_per_minute: anonymous,
        auth_failures_per_minute: 30,
        redis_timeout: Duration::from_millis(100),
    }
}

fn user(id: &str) -> Subject {
    Subject::User(Arc::from(id))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn burst_then_denied_with_exact_retry_after() {
    let clock = FakeRelativeClock::default();
    let l = LocalLimiter::with_clock(&limits(3, 10, 3), &clock);
    let a = user("user_a");
    // 3 per minute: one cell every 20 s; a fresh bucket takes a burst of 3.
    for (remaining, reset) in [(2, 20), (1, 40), (0, 60)] {
        let d = l.check(&a);
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (3, remaining));
        assert_eq!(d.reset, Duration::from_secs(reset));
    }
    let d = l.check(&a);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after, Duration::from_secs(20));
    assert_eq!(d.reset, Duration::from_secs(60));
    // A denied request costs nothing: still 20 s to wait.
    assert_eq!(l.check(&a).retry_after, Duration::from_secs(20));
}

#[test]
fn refills_one_cell_per_emission_interval() {
    let clock = FakeRelativeClock::default();
    let l = LocalLimiter::with_clock(&limits(3, 10, 3), &clock);
    let a = user("user_a");
    for _ in 0..3 {
        assert!(l.check(&a).allowed);
    }
    clock.advance(Duration::from_secs(5));
    let d = l.check(&a);
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Duration::from_secs(15));
    clock.advance(Duration::from_secs(15));
    let d = l.check(&a);
    assert!(d.allowed, "one cell back after 20 s");
    assert_eq!(d.remaining, 0);
    assert!(!l.check(&a).allowed);
    // A full minute idle: the whole burst is back.
    clock.advance(Duration::from_secs(60));
    assert_eq!(l.check(&a).remaining, 2);
}

#[test]
fn kinds_and_keys_have_separate_budgets() {
    let clock = FakeRelativeClock::default();
    let l = LocalLimiter::with_clock(&limits(1, 2, 1), &clock);
    assert!(l.check(&user("user_a")).allowed);
    assert!(!l.check(&user("user_a")).allowed);
    assert!(l.check(&user("user_b")).allowed, "another user");
    // Same string as a service name: another kind, another limit.
    let s = Subject::Service(Arc::from("user_a"));
    let d = l.check(&s);
    assert!(d.allowed);
    assert_eq!((d.limit, d.remaining), (2, 1));
    let anon = Subject::anonymous(ip("10.0.0.1"));
    assert!(l.check(&anon).allowed);
    assert!(!l.check(&anon).allowed);
    assert!(l.check(&Subject::anonymous(ip("10.0.0.2"))).allowed);
}

#[test]
fn idle_buckets_are_pruned() {
    let clock = FakeRelativeClock::default();
    let l = LocalLimiter::with_clock(&limits(60, 60, 60), &clock);
    for i in 0..100u8 {
        l.check(&Subject::anonymous(IpAddr::from([10, 0, 0, i])));
    }
    assert_eq!(l.len(Kind::Anonymous), 100);
    l.retain_recent();
    assert_eq!(l.len(Kind::Anonymous), 100, "buckets not yet full are kept");
    clock.advance(Duration::from_secs(5));
    l.retain_recent();
    assert_eq!(l.len(Kind::Anonymous), 0, "full buckets equal fresh ones");
}

#[test]
fn ipv6_is_keyed_by_its_64_prefix_and_mapped_v4_as_v4() {
    assert_eq!(
        Subject::anonymous(ip("2001:db8:1:2:aaaa::1")),
        Subject::anonymous(ip("2001:db8:1:2:bbbb::2"))
    );
    assert_ne!(
        Subject::anonymous(ip("2001:db8:1:2::1")),
        Subject::anonymous(ip("2001:db8:1:3::1"))
    );
    assert_eq!(
        Subject::anonymous(ip("::ffff:10.1.2.3")),
        Subject::Anonymous(ip("10.1.2.3"))
    );
}

#[test]
fn seconds_round_up() {
    assert_eq!(whole_seconds(Duration::ZERO), 0);
    assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    assert_eq!(whole_seconds(Duration::from_secs(20)), 20);
    assert_eq!(whole_seconds(Duration::from_millis(20_001)), 21);
}

/// Plays authentication: `x-test-user` becomes a user `Principal` (a service key, which
/// only verification can make, is tested through the real server in tests/api/rate_limit.rs).
async fn fake_auth(mut req: Request, next: Next) -> axum::response::Response {
    let user = req
        .headers()
        .get("x-test-user")
        .and_then(|v| v.to_str().ok());
    if let Some(u) = user {
        let p = Principal::User(UserPrincipal::new(
            ClerkUserId::parse(u).expect("user id"),
            Arc::from("sess_1"),
            false,
        ));
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

fn app(limiter: RateLimiter) -> Router {
    Router::new()
        .route("/x", get(|| async { "ok" }))
        .route("/health", get(|| async { "ok" }))
        .layer(from_fn_with_state(limiter, super::rate_limit))
        .layer(from_fn(fake_auth))
}

async fn call(
    app: &Router,
    peer: &str,
    headers: &[(&str, &str)],
    path: &str,
) -> axum::response::Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).expect("request");
    let peer: SocketAddr = peer.parse().expect("addr");
    req.extensions_mut().insert(ConnectInfo(peer));
    app.clone().oneshot(req).await.expect("infallible")
}

fn header(res: &axum::response::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn principals_are_keyed_by_principal_not_ip() {
    let limiter = RateLimiter::new(limits(2, 5, 1), false, None);
    assert_eq!(limiter.redis_status(), RedisStatus::NotConfigured);
    let app = app(limiter);
    let peer = "192.0.2.7:4000";
    let alice = [("x-test-user", "user_alice")];
    for remaining in ["1", "0"] {
        let res = call(&app, peer, &alice, "/x").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "ratelimit-limit"), "2");
        assert_eq!(header(&res, "ratelimit-remaining"), remaining);
    }
    let res = call(&app, peer, &alice, "/x").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "30");
    // Same IP, another user: a budget of its own.
    let res = call(&app, peer, &[("x-test-user", "user_bob")], "/x").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-remaining"), "1");
    // Same IP without credentials: the anonymous budget, untouched by the users.
    let res = call(&app, peer, &[], "/x").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "ratelimit-limit"), "1");
    let res = call(&app, peer, &[], "/x").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // A user on another IP shares alice's budget.
    let res = call(&app, "198.51.100.9:5000", &alice, "/x").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Probes are never limited and carry no RateLimit headers.
    for _ in 0..5 {
        let res = call(&app, peer, &[], "/health").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_trusted() {
    let untrusted = app(RateLimiter::new(limits(9, 9, 1), false, None));
    let spoof = [("x-forwarded-for", "203.0.113.1")];
    assert_eq!(
        call(&untrusted, "192.0.2.1:1", &spoof, "/x").await.status(),
        200
    );
    // A new forwarded address does not buy a new budget.
    let spoof2 = [("x-forwarded-for", "203.0.113.2")];
    assert_eq!(
        call(&untrusted, "192.0.2.1:1", &spoof2, "/x")
            .await
            .status(),
        429
    );

    let trusted = app(RateLimiter::new(limits(9, 9, 1), true, None));
    // The proxy's appended (last) entry counts, not the client-supplied first one.
    let a = [("x-forwarded-for", "6.6.6.6, 203.0.113.1")];
    let b = [("x-forwarded-for", "6.6.6.6, 203.0.113.2")];
    assert_eq!(call(&trusted, "192.0.2.1:1", &a, "/x").await.status(), 200);
    assert_eq!(call(&trusted, "192.0.2.1:1", &b, "/x").await.status(), 200);
    assert_eq!(call(&trusted, "192.0.2.1:1", &a, "/x").await.status(), 429);
    // Garbage falls back to the peer address.
    let junk = [("x-forwarded-for", "not-an-ip")];
    assert_eq!(
        call(&trusted, "192.0.2.50:1", &junk, "/x").await.status(),
        200
    );
    assert_eq!(
        call(&trusted, "192.0.2.50:1", &junk, "/x").await.status(),
        429
    );
}
