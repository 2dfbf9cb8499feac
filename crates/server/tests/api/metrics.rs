//! `/metrics`: after a mix of requests the counters are there, labelled with route
//! templates, and no label value holds an id, a Clerk id or a token. Also: the separate
//! `METRICS_ADDR` listener, and the profile route being off by default.

use serde_json::json;
use testkit::both_backends;

use crate::common::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};

both_backends!(
    metrics_use_route_templates_and_never_ids,
    metrics_move_to_their_own_listener,
    profile_route_is_off_by_default
);

async fn scrape(app: &TestApp, url: String) -> String {
    let res = app.client.get(url).send().await.expect("scrape");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    res.text().await.expect("body")
}

/// Every label value of every sample line.
fn label_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(start) = line.find('{') else {
            continue;
        };
        let Some(end) = line.rfind('}') else { continue };
        for pair in line[start + 1..end].split("\",") {
            if let Some((_, v)) = pair.split_once("=\"") {
                out.push(v.trim_end_matches('"').to_owned());
            }
        }
    }
    out
}

fn has_sample(text: &str, name: &str, labels: &[&str]) -> bool {
    text.lines()
        .any(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|lab| l.contains(lab)))
}

async fn metrics_use_route_templates_and_never_ids(backend: Backend) {
    // Any well-formed secret: the delivery below is unsigned and must be refused.
    let app = spawn_app_with(
        backend,
        &[(
            "CLERK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )],
    )
    .await;
    let clerk = "user_metrics7";
    let id = app.insert_user(clerk).await;
    let token = app.user_token(clerk, false);
    app.insert_user("user_admin9").await;
    let admin = app.user_token("user_admin9", true);
    let get = |path: String, bearer: Option<&str>| {
        let mut req = app.client.get(app.url(&path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(
        get("/health".into(), None).await.expect("health").status(),
        200
    );
    assert_eq!(
        get("/users/me".into(), Some(&token))
            .await
            .expect("me")
            .status(),
        200
    );
    assert_eq!(
        get(format!("/users/{id}"), Some(&admin))
            .await
            .expect("by id")
            .status(),
        200
    );
    assert_eq!(
        get(format!("/users/{clerk}"), Some(&admin))
            .await
            .expect("by clerk")
            .status(),
        200
    );
    assert_eq!(
        get(format!("/no/such/{id}"), None)
            .await
            .expect("404")
            .status(),
        404
    );
    assert_eq!(
        get("/users/me".into(), Some("not-a-token"))
            .await
            .expect("401")
            .status(),
        401
    );
    // A preference change through its use case (its routes come with the OwnedUser work).
    app.state
        .app()
        .patch_preferences(
            &app.owner(clerk).await,
            json!({"ui": {"theme": "dark"}}),
            None,
        )
        .await
        .expect("preferences change");
    // An unsigned Clerk webhook: counted, refused.
    let res = app
        .client
        .post(app.url("/webhooks/clerk"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("webhook");
    assert_problem(res, 401, "invalid_signature").await;

    let text = scrape(&app, app.url("/metrics")).await;
    let route = |r: &str| format!("route=\"{r}\"");
    for (route_label, status) in [
        ("/health", "2xx"),
        ("/users/{user_ref}", "2xx"),
        ("/users/{user_ref}", "4xx"),
        ("unmatched", "4xx"),
    ] {
        let labels = [route(route_label), format!("status=\"{status}\"")];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert!(
            has_sample(&text, "user_service_http_requests_total", &labels),
            "no {route_label} {status} in:\n{text}"
        );
        assert!(
            has_sample(
                &text,
                "user_service_http_request_duration_seconds_bucket",
                &labels
            ),
            "no duration histogram for {route_label}"
        );
    }
    for (name, labels) in [
        ("user_service_http_requests_in_flight", &[][..]),
        ("user_service_build_info", &["version=\"", "commit=\""][..]),
        ("user_service_db_pool_connections_in_use", &["pool=\""][..]),
        ("user_service_db_pool_connections_idle", &["pool=\""][..]),
        (
            "user_service_db_query_duration_seconds_bucket",
            &["operation=\"select\"", "table=\"users\""][..],
        ),
        (
            "user_service_preference_changes_total",
            &["category=\"ui\""][..],
        ),
        (
            "user_service_clerk_webhooks_total",
            &["outcome=\"invalid_signature\""][..],
        ),
    ] {
        let found = text.lines().any(|l| {
            (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                && labels.iter().all(|lab| l.contains(lab))
        });
        assert!(found, "no {name} {labels:?} in:\n{text}");
    }
    let id_text = id.to_string();
    for v in label_values(&text) {
        for secret in [
            id_text.as_str(),
            clerk,
            "user_admin9",
            &token,
            &admin,
            "not-a-token",
        ] {
            assert!(!v.contains(secret), "label value {v:?} holds {secret:?}");
        }
        assert!(!v.contains("/no/such"), "raw path in a label: {v:?}");
    }
    // Scrapes are not rate limited.
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert!(res.headers().get("ratelimit-limit").is_none());
}

async fn metrics_move_to_their_own_listener(backend: Backend) {
    let app = spawn_app_with(backend, &[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("api port");
    assert_problem(res, 404, "not_found").await;
    let addr = app.metrics_addr.expect("a metrics listener");
    let text = scrape(&app, format!("http://{addr}/metrics")).await;
    assert!(text.contains("user_service_build_info"), "{text}");
}

async fn profile_route_is_off_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    app.insert_user("user_admin1").await;
    let admin = app.user_token("user_admin1", true);
    let res = app
        .client
        .get(app.url("/admin/debug/profile?seconds=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("profile");
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_route_serves_admins_a_flamegraph_when_enabled() {
    let app = spawn_app_with(Backend::Sqlite, &[("PROFILING_ENABLED", "true")]).await;
    app.insert_user("user_plain1").await;
    let user = app.user_token("user_plain1", false);
    let res = app
        .client
        .get(app.url("/admin/debug/profile?seconds=1"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("profile");
    assert_problem(res, 403, "forbidden").await;
    app.insert_user("user_admin1").await;
    let admin = app.user_token("user_admin1", true);
    let res = app
        .client
        .get(app.url("/admin/debug/profile?seconds=0"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("profile");
    assert_problem(res, 422, "validation_error").await;
    let res = app
        .client
        .get(app.url("/admin/debug/profile?seconds=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("profile");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.expect("body");
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
}
