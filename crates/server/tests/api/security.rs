//! Security guarantees of docs/security.md, end to end: a service key revoked by the CLI in
//! another process stops working in every running process within 2 s; failed
//! authentications are limited per IP before any lookup; metrics leave the API port in
//! production, and a scrape does not query the database; a token the provider proxy
//! injects reaches neither the caller nor the logs, and the proxy is counted per provider
//! and status.

use std::time::{Duration, Instant};

use testkit::{Backend, both_backends};

use crate::{
    auth::probe_routes,
    common::{TestApp, assert_problem, spawn_app_with, spawn_app_with_routes},
    dev_auth::run_cli,
};

both_backends!(
    revoked_key_is_refused_everywhere_within_two_seconds,
    failed_authentications_are_limited_before_any_lookup,
    production_serves_metrics_only_on_metrics_addr,
    scrapes_do_not_query_the_database,
    proxied_tokens_reach_neither_the_caller_nor_the_logs
);

/// The revocation guarantee of API.md ("effective in every running process within 2 s").
const REVOCATION_BOUND: Duration = Duration::from_secs(2);

async fn status_with_key(client: &reqwest::Client, url: String, key: &str) -> u16 {
    client
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn revoked_key_is_refused_everywhere_within_two_seconds(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let replica = app.spawn_replica(&[]).await;
    let out = run_cli(
        &app,
        &[
            "service-key",
            "create",
            "--name",
            "billing",
            "--permissions",
            "integrations:read",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("usk_"))
        .expect("key printed")
        .to_owned();
    // Both processes have verified (and so cached) the key.
    let urls = [
        app.url("/internal/integrations/stats"),
        replica.url("/internal/integrations/stats"),
    ];
    for url in &urls {
        assert_eq!(
            status_with_key(&app.client, url.clone(), &key).await,
            200,
            "{url}"
        );
    }

    // Revoked by the operator's command: another process, through the CLI's own code path.
    let out = run_cli(&app, &["service-key", "revoke", "billing"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked = Instant::now();
    for url in &urls {
        loop {
            let sent = Instant::now();
            let status = status_with_key(&app.client, url.clone(), &key).await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200, "{url}");
            assert!(
                sent.duration_since(revoked) < REVOCATION_BOUND,
                "{url} still accepted a key revoked {:?} before the request",
                sent.duration_since(revoked)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // And it stays refused, with the problem format.
    let res = app
        .client
        .get(app.url("/internal/integrations/stats"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "unauthorized").await;
}

/// The sum of every sample of `name` whose labels contain all of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), 200);
    res.text().await.expect("body")
}

/// Statements the database ran against `table` (each is timed into the histogram).
fn selects_on(text: &str, table: &str) -> f64 {
    metric_sum(
        text,
        "user_service_db_query_duration_seconds_count",
        &["operation=\"select\"", &format!("table=\"{table}\"")],
    )
}

fn random_key() -> String {
    let mut bytes = [0u8; 43];
    getrandom::fill(&mut bytes).expect("rng");
    let body: String = bytes
        .iter()
        .map(|b| {
            let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            char::from(chars[usize::from(*b) % chars.len()])
        })
        .collect();
    format!("usk_{body}")
}

async fn failed_authentications_are_limited_before_any_lookup(backend: Backend) {
    const LIMIT: usize = 5;
    let app = spawn_app_with_routes(
        backend,
        &[("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "5")],
        probe_routes(),
    )
    .await;
    // A real key, used once so it is cached: it keeps working for this IP while blocked.
    let good = app.service_key("billing", &["tokens:read"]).await;
    assert_eq!(
        status_with_key(&app.client, app.url("/test/tokens"), &good).await,
        200
    );
    let before = scrape(&app).await;

    let mut statuses = Vec::new();
    for _ in 0..LIMIT + 20 {
        let res = app
            .client
            .get(app.url("/test/tokens"))
            .header("x-api-key", random_key())
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        if status == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            assert_problem(res, 429, "rate_limited").await;
        }
        statuses.push(status);
    }
    assert_eq!(statuses[..LIMIT], [401; LIMIT], "{statuses:?}");
    assert!(statuses[LIMIT..].iter().all(|s| *s == 429), "{statuses:?}");
    // A bad session token from the blocked IP is not even verified.
    let res = app
        .client
        .get(app.url("/test/whoami"))
        .bearer_auth("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.c2ln")
        .send()
        .await
        .expect("request");
    assert_problem(res, 429, "rate_limited").await;
    // The cached good key is still served.
    assert_eq!(
        status_with_key(&app.client, app.url("/test/tokens"), &good).await,
        200
    );

    let after = scrape(&app).await;
    let lookups = selects_on(&after, "service_keys") - selects_on(&before, "service_keys");
    assert!(
        (lookups - LIMIT as f64).abs() < 0.5,
        "one lookup per failure up to the limit, none after: {lookups}"
    );
    let failures = |text: &str, kind: &str| {
        metric_sum(
            text,
            "user_service_auth_failures_total",
            &[&format!("kind=\"{kind}\"")],
        )
    };
    assert!(
        (failures(&after, "service_key") - LIMIT as f64).abs() < 0.5,
        "{after}"
    );
    assert!(
        (failures(&after, "throttled") - 21.0).abs() < 0.5,
        "{after}"
    );
}

/// What production requires, pointing at nothing: the JWKS fetch fails and is retried on
/// use, which these checks never need.
fn production_env(metrics_addr: Option<&str>) -> Vec<(&str, &str)> {
    let mut env = vec![
        ("ENVIRONMENT", "production"),
        ("CLERK_JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json"),
        ("CLERK_ISSUER", "https://clerk.example.test"),
        (
            "TOKEN_ENCRYPTION_KEYS",
            "1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        ),
    ];
    if let Some(addr) = metrics_addr {
        env.push(("METRICS_ADDR", addr));
    }
    env
}

async fn production_serves_metrics_only_on_metrics_addr(backend: Backend) {
    let app = spawn_app_with(backend, &production_env(Some("127.0.0.1:0"))).await;
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("api port");
    assert_problem(res, 404, "not_found").await;
    let addr = app.metrics_addr.expect("a metrics listener");
    let res = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics port");
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("user_service_build_info")
    );
    app.shutdown().await.expect("clean shutdown");

    // Without METRICS_ADDR, production serves them nowhere (never on the public port).
    let app = spawn_app_with(backend, &production_env(None)).await;
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("api port");
    assert_problem(res, 404, "not_found").await;
}

async fn scrapes_do_not_query_the_database(backend: Backend) {
    let app = spawn_app_with(backend, &[("METRICS_SAMPLE_INTERVAL_SECONDS", "3600")]).await;
    // The first scrape starts one background sample; wait for it to land.
    scrape(&app).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first = scrape(&app).await;
    while selects_on(&first, "integrations") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the integrations gauge is never sampled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        first = scrape(&app).await;
    }
    for _ in 0..20 {
        scrape(&app).await;
    }
    let last = scrape(&app).await;
    assert!(
        (selects_on(&last, "integrations") - selects_on(&first, "integrations")).abs() < 0.5,
        "scrapes within the sample interval ran a query"
    );
}

/// Every path of the provider proxy that logs (a plain call, a 401 with its refresh and
/// retry, a provider that answers 503, a refused path), with secrets in the query: the
/// caller's answers and the log hold no token, key or query value, and the calls are
/// counted by provider and status.
async fn proxied_tokens_reach_neither_the_caller_nor_the_logs(backend: Backend) {
    use server::{config::LogFormat, telemetry};

    use crate::{connected::connected, fake_provider::hex};
    let logs = crate::traces::Capture::default();
    let writer = logs.clone();
    let _telemetry = telemetry::init_with_writer(
        &telemetry::Settings {
            log_format: LogFormat::Json,
            log_dir: None,
            log_retention_days: 1,
            otlp_endpoint: None,
        },
        move || writer.clone(),
    )
    .expect("telemetry installs");
    let (app, fake, key) = connected(backend, "user_leak", "google").await;
    let query_secret = format!("qv-{}", hex(b"query secret"));
    let answers = proxied_calls(&app, &fake, &key, &query_secret).await;
    app.state.app().access_log().flush().await;

    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        text.contains("/internal/proxy/"),
        "the requests were logged"
    );
    let mut secrets = fake.inner.lock().expect("lock").issued.clone();
    assert!(secrets.len() >= 4, "a refresh happened");
    secrets.push(key.clone());
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret reached the logs");
        assert!(!answers.contains(s.as_str()), "a secret reached the caller");
    }
    assert!(
        !text.contains(&query_secret),
        "a query value reached the logs"
    );

    let metrics = scrape(&app).await;
    let proxied = "user_service_proxied_requests_total";
    let google = r#"provider="google""#;
    assert_eq!(
        metric_sum(&metrics, proxied, &[google, r#"status="200""#]),
        2.0
    );
    assert_eq!(
        metric_sum(&metrics, proxied, &[google, r#"status="503""#]),
        1.0
    );
}

/// A plain proxied call, one whose token the provider refuses (refresh and retry), one the
/// provider answers 503 and one with a refused path, secrets in every query: their
/// statuses checked, their answers (headers and bodies) returned as one text.
async fn proxied_calls(
    app: &TestApp,
    fake: &crate::fake_provider::FakeProvider,
    key: &str,
    query_secret: &str,
) -> String {
    let get = |path: String| {
        app.client
            .get(app.url(&path))
            .header("x-api-key", key)
            .header("x-user-id", "user_leak")
            .send()
    };
    let plain = format!("/internal/proxy/google/drive/v3/files?key={query_secret}");
    let refused = format!("/internal/proxy/google/a%2f..%2fb?token={query_secret}");
    let mut answers = String::new();
    let mut statuses = Vec::new();
    for (i, path) in [plain.clone(), plain.clone(), plain, refused]
        .into_iter()
        .enumerate()
    {
        if i == 1 {
            fake.revoke_access_tokens();
        }
        if i == 2 {
            let unavailable = (axum::http::StatusCode::SERVICE_UNAVAILABLE, Some(3));
            fake.inner
                .lock()
                .expect("lock")
                .api_fail_next
                .push(unavailable);
        }
        let res = get(path).await.expect("request");
        statuses.push(res.status().as_u16());
        answers.push_str(&format!("{:?}", res.headers()));
        answers.push_str(&res.text().await.expect("body"));
    }
    assert_eq!(statuses, [200, 200, 503, 400]);
    answers
}
