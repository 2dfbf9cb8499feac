//! The problem documents clients see, pinned as snapshots (`tests/api/snapshots`): a changed
//! body is a reviewed diff (`cargo insta review`), never a silent one. Both engines must give
//! the same document, so both compare with the same snapshot. The request id and the
//! timestamp are the only fields that differ between runs (and a 429's wait); they are
//! checked for shape and replaced before comparing.

use axum::http::StatusCode;
use reqwest::{RequestBuilder, Response, header};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, spawn_app_with},
    connected::{app_with_env, connect, connected, expire_in, set_time},
    fake_provider::FakeProvider,
    webhooks::{SECRET_A, whsec},
};

both_backends!(
    problem_documents_are_pinned,
    state_and_capacity_problems_are_pinned,
    token_problems_are_pinned,
    an_internal_failure_is_pinned,
    proxy_problems_are_pinned
);

/// Status, media type and body of one answer, the request id and timestamp replaced.
async fn problem(request: RequestBuilder) -> Value {
    problem_of(request.send().await.expect("request")).await
}

/// [`problem`] of an answer already received.
async fn problem_of(res: Response) -> Value {
    let status = res.status().as_u16();
    let media = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let mut body: Value = res.json().await.expect("a JSON body");
    assert!(body["request_id"].is_string(), "{body}");
    body["request_id"] = json!("[request id]");
    let at = body["timestamp"].as_str().expect("a timestamp");
    chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 timestamp");
    body["timestamp"] = json!("[timestamp]");
    json!({"status": status, "content_type": media, "body": body})
}

async fn problem_documents_are_pinned(backend: Backend) {
    let secret = whsec(SECRET_A);
    let app = spawn_app_with(
        backend,
        &[
            ("MAX_BODY_BYTES", "2048"),
            ("CLERK_WEBHOOK_SECRET", &secret),
        ],
    )
    .await;
    app.insert_user("user_pinned").await;
    let token = app.user_token("user_pinned", false);
    let c = &app.client;
    let me = app.url("/users/me");
    let json_body = |b: &str| {
        c.patch(&me)
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(b.to_owned())
    };
    let cases: Vec<(&str, RequestBuilder)> = vec![
        ("invalid_request", json_body("{not json")),
        ("unauthorized", c.get(&me)),
        (
            "unauthorized_bad_token",
            c.get(&me).bearer_auth("not.a.token"),
        ),
        (
            "invalid_signature",
            c.post(app.url("/webhooks/clerk"))
                .header("svix-id", "msg_1")
                .header("svix-timestamp", "1")
                .header("svix-signature", "v1,AAAA")
                .body("{}"),
        ),
        (
            "forbidden",
            c.get(app.url("/admin/jobs")).bearer_auth(&token),
        ),
        ("not_found", c.get(app.url("/no/such/route"))),
        ("method_not_allowed", c.delete(app.url("/health"))),
        (
            "precondition_failed",
            c.put(app.url("/users/me/preferences"))
                .bearer_auth(&token)
                .header(header::IF_MATCH, "\"99\"")
                .json(&json!({"ui": {"theme": "light"}})),
        ),
        (
            "payload_too_large",
            json_body(&format!("{{\"first_name\": \"{}\"}}", "a".repeat(4096))),
        ),
        (
            "unsupported_media_type",
            c.patch(&me)
                .bearer_auth(&token)
                .header(header::CONTENT_TYPE, "text/plain")
                .body("{}"),
        ),
        ("validation_error", json_body("{\"first_name\": 7}")),
    ];
    for (name, request) in cases {
        insta::assert_json_snapshot!(name, problem(request).await);
    }
}

/// A conflict with the stored state, a dependency that is not set up, and a client over
/// its rate limit.
async fn state_and_capacity_problems_are_pinned(backend: Backend) {
    // No CLERK_WEBHOOK_SECRET: the webhook route cannot verify anything.
    let app = spawn_app_with(backend, &[("RATE_LIMIT_ANONYMOUS_PER_MINUTE", "2")]).await;
    app.insert_user("user_root").await;
    app.insert_user("user_live").await;
    let admin = app.user_token("user_root", true);
    let c = &app.client;
    insta::assert_json_snapshot!(
        "conflict",
        problem(
            c.post(app.url("/users/user_live/restore"))
                .bearer_auth(&admin)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "service_unavailable",
        problem(c.post(app.url("/webhooks/clerk")).body("{}")).await
    );
    // Anonymous requests until the limit answers (the webhook call above counted too).
    let mut limited = None;
    for _ in 0..5 {
        let res = c
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("request");
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
    }
    let mut doc = problem_of(limited.expect("a 429 within 5 requests")).await;
    // The wait depends on when the window started: checked for shape, then replaced.
    let detail = doc["body"]["detail"].as_str().expect("a detail").to_owned();
    let (head, wait) = detail.split_once("retry in ").expect("the wait is named");
    let seconds = wait.strip_suffix(" s").expect("in seconds");
    assert!(
        seconds.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)),
        "{detail}"
    );
    doc["body"]["detail"] = json!(format!("{head}retry in [seconds] s"));
    insta::assert_json_snapshot!("rate_limited", doc);
}

/// What a service sees when the token cannot be had: scopes it lacks, a failing provider,
/// a grant the provider revoked.
async fn token_problems_are_pinned(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_pinned", "google").await;
    let get = |body: Value| {
        app.client
            .post(app.url("/internal/tokens/get"))
            .header("x-api-key", &key)
            .json(&body)
    };
    let ask = json!({"user_id": "user_pinned", "provider": "google"});
    insta::assert_json_snapshot!(
        "insufficient_scope",
        problem(get(json!({"user_id": "user_pinned", "provider": "google",
            "scopes": ["email", "https://mail.test/read"]})))
        .await
    );
    // Expired, the last attempt long ago, the provider down: 502.
    let attempted = testkit::store::entities::integrations::Column::LastRefreshAttemptAt;
    expire_in(&app, -5).await;
    set_time(&app, attempted, -60).await;
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
    insta::assert_json_snapshot!("provider_error", problem(get(ask.clone())).await);
    // The provider refuses the refresh token: the user must reconnect.
    set_time(&app, attempted, -60).await;
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((StatusCode::BAD_REQUEST, "invalid_grant"));
    insta::assert_json_snapshot!("reauthorization_required", problem(get(ask)).await);
}

/// A stored access token that no longer opens (its ciphertext was altered at rest): the
/// service cannot hand it out and says only that it failed, never why.
async fn an_internal_failure_is_pinned(backend: Backend) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use testkit::store::entities::integration_tokens as tokens;

    let (app, _fake, key) = connected(backend, "user_tampered", "google").await;
    let writer = app.state.app().test_db().writer();
    let access = tokens::Entity::find()
        .filter(tokens::Column::Kind.eq("access"))
        .one(writer)
        .await
        .expect("query")
        .expect("the access token row");
    let mut altered = access.ciphertext.clone();
    let last = altered.last_mut().expect("a ciphertext");
    *last ^= 0x01;
    tokens::Entity::update_many()
        .col_expr(tokens::Column::Ciphertext, Expr::value(altered))
        .filter(tokens::Column::Kind.eq("access"))
        .exec(writer)
        .await
        .expect("update");
    let res = app
        .client
        .post(app.url("/internal/tokens/get"))
        .header("x-api-key", &key)
        .json(&json!({"user_id": "user_tampered", "provider": "google"}))
        .send()
        .await
        .expect("request");
    insta::assert_json_snapshot!("internal_error", problem_of(res).await);
}

/// What a service sees when the provider's API gives no answer through the proxy: none
/// at all (nothing listens), or none in time.
async fn proxy_problems_are_pinned(backend: Backend) {
    let fake = FakeProvider::start().await;
    // Port 9 of loopback: nothing listens (the fake's own API is configured first, this
    // override of the base URL wins).
    let app = app_with_env(
        backend,
        &fake,
        &["google", "microsoft"],
        &[
            ("OAUTH_MICROSOFT_API_BASE_URL", "http://127.0.0.1:9/v1.0"),
            ("PROXY_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    app.insert_user("user_pinned").await;
    let session = app.user_token("user_pinned", false);
    connect(&app, &fake, &session, "google").await;
    connect(&app, &fake, &session, "microsoft").await;
    let key = app.service_key("proxy-pins", &["tokens:read"]).await;
    let call = |path: &str| {
        app.client
            .get(app.url(&format!("/internal/proxy/{path}")))
            .header("x-api-key", &key)
            .header("x-user-id", "user_pinned")
    };
    insta::assert_json_snapshot!("provider_unreachable", problem(call("microsoft/me")).await);
    fake.inner.lock().expect("lock").api_delay = std::time::Duration::from_secs(3);
    insta::assert_json_snapshot!(
        "provider_timeout",
        problem(call("google/drive/v3/files")).await
    );
}
