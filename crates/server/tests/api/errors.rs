use testkit::both_backends;

use axum::routing::get;

use crate::common::{Backend, assert_problem, spawn_app, spawn_app_with, spawn_app_with_routes};

both_backends!(
    body_limits_and_media_types_are_problems,
    panic_is_a_500_problem_without_internals,
    cors_allows_only_configured_origins,
    unknown_route_is_problem_404_with_request_id,
    request_ids_sane_or_replaced,
    wrong_method_is_problem_405
);

async fn unknown_route_is_problem_404_with_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "trace-me.1")
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["x-request-id"], "trace-me.1");
    let body = assert_problem(res, 404, "not_found").await;
    assert_eq!(body["instance"], "/no/such/route");
    assert_eq!(body["request_id"], "trace-me.1");
}

async fn request_ids_sane_or_replaced(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id/with spaces")
        .send()
        .await
        .expect("request");
    let rid = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(rid, "bad id/with spaces");
    assert!(
        uuid::Uuid::parse_str(&rid).is_ok(),
        "replaced by a UUID: {rid}"
    );
    let long = "a".repeat(129);
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &long)
        .send()
        .await
        .expect("request");
    assert_ne!(res.headers()["x-request-id"], long.as_str());
}

async fn wrong_method_is_problem_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .delete(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_problem(res, 405, "method_not_allowed").await;
}

async fn body_limits_and_media_types_are_problems(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_BODY_BYTES", "2048")]).await;
    app.insert_user("user_limits").await;
    let token = app.user_token("user_limits", false);
    let big = format!("{{\"first_name\": \"{}\"}}", "a".repeat(4096));
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_problem(res, 413, "payload_too_large").await;
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_problem(res, 415, "unsupported_media_type").await;
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"first_name\": ")
        .send()
        .await
        .expect("request");
    assert_problem(res, 400, "invalid_request").await;
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"nickname": "x"}))
        .send()
        .await
        .expect("request");
    let body = assert_problem(res, 422, "validation_error").await;
    assert_eq!(body["errors"][0]["field"], "nickname");
}

async fn panic_is_a_500_problem_without_internals(backend: Backend) {
    let routes =
        axum::Router::new().route("/test/panic", get(|| async { fail("internal-detail-xyz") }));
    let app = spawn_app_with_routes(backend, &[], routes).await;
    let res = app
        .client
        .get(app.url("/test/panic"))
        .send()
        .await
        .expect("request");
    let body = assert_problem(res, 500, "internal_error").await;
    assert!(
        !body.to_string().contains("internal-detail-xyz"),
        "internals leaked: {body}"
    );
    // The service keeps serving after a panic.
    let res = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
}

async fn cors_allows_only_configured_origins(backend: Backend) {
    let app = spawn_app_with(backend, &[("CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .send()
    };
    let ok = preflight("https://app.example").await.expect("preflight");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// A handler body that panics with a detail that must never reach the client.
fn fail(detail: &str) -> &'static str {
    panic!("boom: {detail}")
}
