//! Rate limiting through the real server: anonymous callers keyed by IP, RateLimit headers,
//! 429 problems, probes unlimited, a real service key keyed by the key, not its address;
//! with Redis, one budget shared by two instances, and an outage that degrades to local
//! limits and recovers.
//!
//! Each test sends from its own random loopback address (127.x.y.z), so its anonymous
//! bucket cannot collide with another test's, even in the one Redis the suite shares.

use std::{
    net::{IpAddr, Ipv4Addr},
    process::Stdio,
    time::Duration,
};

use testkit::both_backends;
use tokio::process::{Child, Command};

use crate::common::{Backend, TestApp, assert_problem, spawn_app_with};

both_backends!(
    anonymous_limit_headers_and_429,
    a_service_key_has_one_budget_from_any_address,
    two_instances_share_one_budget_through_redis,
    redis_outage_falls_back_to_local_and_recovers
);

/// A client sending from a random 127.0.0.0/8 address (not 127.0.0.1).
fn client_from_random_loopback() -> (reqwest::Client, IpAddr) {
    let b = *uuid::Uuid::new_v4().as_bytes();
    let ip = IpAddr::V4(Ipv4Addr::new(127, 1 + b[0] % 250, b[1], 1 + b[2] % 250));
    let client = reqwest::Client::builder()
        .local_address(ip)
        .build()
        .expect("client");
    (client, ip)
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn number(res: &reqwest::Response, name: &str) -> u64 {
    header(res, name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not an integer"))
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> reqwest::Response {
    client.get(app.url(path)).send().await.expect("request")
}

/// `/ready`'s `redis` field.
async fn redis_field(app: &TestApp) -> String {
    let body: serde_json::Value = get(&app.client, app, "/ready")
        .await
        .json()
        .await
        .expect("json");
    body["redis"].as_str().unwrap_or_default().to_owned()
}

/// Polls `/ready` until `redis` is `want`; fails after 15 s.
async fn wait_for_redis(app: &TestApp, want: &str) {
    for _ in 0..150 {
        if redis_field(app).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "/ready never reported redis: {want} (last: {})",
        redis_field(app).await
    );
}

fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .expect("TEST_REDIS_URL must be set (scripts/test starts Redis and exports it)")
}

async fn anonymous_limit_headers_and_429(backend: Backend) {
    let app = spawn_app_with(backend, &[("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "3")]).await;
    let (client, _) = client_from_random_loopback();
    let mut last_reset = 0;
    for remaining in [2, 1, 0] {
        let res = get(&client, &app, "/openapi.json").await;
        assert_eq!(res.status(), 200);
        assert_eq!(number(&res, "ratelimit-limit"), 3);
        assert_eq!(number(&res, "ratelimit-remaining"), remaining);
        let reset = number(&res, "ratelimit-reset");
        assert!(
            reset > last_reset && reset <= 60,
            "reset {reset} after {last_reset}"
        );
        last_reset = reset;
    }
    let res = get(&client, &app, "/openapi.json").await;
    let retry = number(&res, "retry-after");
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    assert_eq!(number(&res, "ratelimit-remaining"), 0);
    assert_eq!(number(&res, "ratelimit-limit"), 3);
    let body = assert_problem(res, 429, "rate_limited").await;
    assert_eq!(body["instance"], "/openapi.json");
    // Unknown paths count too (no free scanning), and stay limited.
    let res = get(&client, &app, "/no/such/route").await;
    assert_eq!(res.status(), 429);
    // Probes are never limited and carry no RateLimit headers.
    for path in ["/health", "/ready"] {
        for _ in 0..10 {
            let res = get(&client, &app, path).await;
            assert_eq!(res.status(), 200, "{path}");
            assert!(header(&res, "ratelimit-limit").is_none(), "{path}");
        }
    }
    // Another client IP has its own budget.
    let (other, _) = client_from_random_loopback();
    assert_eq!(get(&other, &app, "/openapi.json").await.status(), 200);
}

/// A verified service key spends the service budget (`RATE_LIMIT_SERVICE_PER_MINUTE`),
/// one budget whichever address it calls from; the addresses keep their anonymous ones.
async fn a_service_key_has_one_budget_from_any_address(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("RATE_LIMIT_SERVICE_PER_MINUTE", "2"),
            ("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "1"),
        ],
    )
    .await;
    let key = app.service_key("billing", &["tokens:read"]).await;
    let (a, _) = client_from_random_loopback();
    let (b, _) = client_from_random_loopback();
    let with_key = |c: &reqwest::Client| {
        c.get(app.url("/openapi.json"))
            .header("x-api-key", key.as_str())
            .send()
    };
    for (client, remaining) in [(&a, 1), (&b, 0)] {
        let res = with_key(client).await.expect("request");
        assert_eq!(res.status(), 200);
        assert_eq!(number(&res, "ratelimit-limit"), 2);
        assert_eq!(number(&res, "ratelimit-remaining"), remaining);
    }
    let (c, _) = client_from_random_loopback();
    assert_problem(with_key(&c).await.expect("request"), 429, "rate_limited").await;
    for client in [&a, &b, &c] {
        let res = get(client, &app, "/openapi.json").await;
        assert_eq!(res.status(), 200);
        assert_eq!(number(&res, "ratelimit-limit"), 1);
    }
}

async fn two_instances_share_one_budget_through_redis(backend: Backend) {
    let url = test_redis_url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "4"),
        // Generous under a loaded test machine: a slow answer would fall back to the local
        // limiter and the shared count would be off (the outage test keeps the default).
        ("RATE_LIMIT_REDIS_TIMEOUT_MS", "2000"),
    ];
    let a = spawn_app_with(backend, &env).await;
    let b = spawn_app_with(backend, &env).await;
    wait_for_redis(&a, "ok").await;
    wait_for_redis(&b, "ok").await;
    let (client, _) = client_from_random_loopback();
    // Alternating instances: one budget counts down across both.
    for (app, remaining) in [(&a, 3), (&b, 2), (&a, 1), (&b, 0)] {
        let res = get(&client, app, "/openapi.json").await;
        assert_eq!(res.status(), 200);
        assert_eq!(number(&res, "ratelimit-remaining"), remaining);
    }
    for app in [&a, &b] {
        let res = get(&client, app, "/openapi.json").await;
        assert!(number(&res, "retry-after") >= 1);
        assert_problem(res, 429, "rate_limited").await;
    }
}

/// A `redis-server` of the test's own on `port`.
async fn start_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not listen on {port}");
}

async fn redis_has(port: u16, key: &str) -> bool {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<bool>(&mut conn)
        .await
        .expect("EXISTS")
}

async fn redis_outage_falls_back_to_local_and_recovers(backend: Backend) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut redis = start_redis(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let app = spawn_app_with(
        backend,
        &[
            ("REDIS_URL", url.as_str()),
            ("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "1000"),
        ],
    )
    .await;
    wait_for_redis(&app, "ok").await;
    let (client, ip) = client_from_random_loopback();
    let key = format!("rl:anonymous:{ip}");
    assert!(
        checked_through_redis(&client, &app, port, &key).await,
        "no check went through Redis"
    );

    redis.kill().await.expect("stop redis");
    // Still serving, from the local limiter, with its headers.
    for _ in 0..20 {
        let res = get(&client, &app, "/openapi.json").await;
        assert_eq!(res.status(), 200);
        assert_eq!(number(&res, "ratelimit-limit"), 1000);
    }
    wait_for_redis(&app, "degraded").await;
    let res = get(&app.client, &app, "/ready").await;
    assert_eq!(res.status(), 200, "a Redis outage does not fail readiness");

    let _redis = start_redis(port).await;
    wait_for_redis(&app, "ok").await;
    assert!(
        checked_through_redis(&client, &app, port, &key).await,
        "back on Redis after recovery"
    );
}

/// Sends requests until one's check has gone through Redis (its key is there): a check
/// that took longer than the limiter's Redis budget on a loaded machine falls back to the
/// local limiter, so one request proves nothing either way. False after 50.
async fn checked_through_redis(
    client: &reqwest::Client,
    app: &TestApp,
    port: u16,
    key: &str,
) -> bool {
    for _ in 0..50 {
        assert_eq!(get(client, app, "/openapi.json").await.status(), 200);
        if redis_has(port, key).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
