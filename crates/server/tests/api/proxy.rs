//! The provider proxy (docs/proxy.md) against the fake provider's API, a real HTTP server
//! on a loopback port that takes only the live access tokens it issued and echoes what
//! it received: the token injected and our credentials stripped, one refresh on a 401
//! (one for many concurrent calls), `Retry-After` passed through, bodies of several MB
//! streamed and larger ones refused, paths that would leave the API refused before any
//! call, the key's permission and limits, the audit entry.

use std::time::Duration;

use app::{Ctx, service_keys::KeyOptions};
use axum::http::StatusCode;
use reqwest::Response;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::both_backends;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{app_with_env, audit_actions, connect, connected},
    fake_provider::{FakeProvider, hex},
};

both_backends!(
    calls_are_forwarded_with_the_token_and_without_our_credentials,
    a_provider_401_refreshes_once_and_retries,
    retry_after_passes_through,
    large_bodies_stream_both_ways,
    bodies_past_the_limit_are_refused,
    paths_that_leave_the_api_are_refused_before_any_call,
    keys_users_and_integrations_are_checked,
);

const USER: &str = "user_proxy";

/// A proxied `method` call to `path` (with its query) as `USER`.
pub fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(&format!("/internal/proxy/{path}")))
        .header("x-api-key", key)
        .header("x-user-id", USER)
}

async fn json_of(res: Response) -> Value {
    assert_eq!(res.status(), 200, "a forwarded answer");
    res.json().await.expect("json")
}

async fn calls_are_forwarded_with_the_token_and_without_our_credentials(backend: Backend) {
    let (app, fake, key) = connected(backend, USER, "google").await;
    let session = app.user_token(USER, false);
    let res = call(
        &app,
        &key,
        reqwest::Method::GET,
        "google/calendar/v3/users/me?maxResults=5&q=secret%20words",
    )
    .header("cookie", "__session=browser-cookie")
    .header("x-custom", "kept")
    .send()
    .await
    .expect("request");
    assert!(
        res.headers().get("set-cookie").is_none(),
        "the provider's cookie stays behind"
    );
    assert_eq!(
        res.headers()["x-provider"],
        "fake",
        "the provider's own headers go through"
    );
    let echo = json_of(res).await;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/calendar/v3/users/me");
    assert_eq!(echo["query"], "maxResults=5&q=secret%20words");
    let sent: Vec<&str> = echo["headers"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for ours in ["x-api-key", "x-user-id", "cookie"] {
        assert!(
            !sent.contains(&ours),
            "{ours} reached the provider: {sent:?}"
        );
    }
    assert!(sent.contains(&"x-custom") && sent.contains(&"authorization"));
    let calls = fake.api_calls();
    assert!(
        calls[0].authorized,
        "the user's live access token was injected"
    );
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, "/api/calendar/v3/users/me");
    assert_eq!(
        calls[0].query.as_deref(),
        Some("maxResults=5&q=secret%20words")
    );
    assert!(
        !calls[0]
            .headers
            .iter()
            .any(|h| h == "x-api-key" || h == "cookie")
    );

    // The service key in `Authorization` is replaced by the user's token, not forwarded.
    let res = app
        .client
        .post(app.url("/internal/proxy/google/gmail/v1/users/me/messages/send"))
        .bearer_auth(&key)
        .header("x-user-id", USER)
        .json(&serde_json::json!({"raw": "aGVsbG8"}))
        .send()
        .await
        .expect("request");
    let text = res.text().await.expect("body");
    let echo: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], r#"{"raw":"aGVsbG8"}"#);
    assert!(fake.api_calls()[1].authorized);
    for token in fake.inner.lock().expect("lock").issued.iter() {
        assert!(!text.contains(token.as_str()), "a token reached the caller");
    }
    assert!(!text.contains(&key));

    audited_without_body_query_or_token(&app, &fake, &session).await;
}

/// The two calls above are audited as `token.proxied`, without the body, the query's
/// values or the token.
async fn audited_without_body_query_or_token(app: &TestApp, fake: &FakeProvider, session: &str) {
    let entries = audit_actions(app, session).await;
    let proxied: Vec<&Value> = entries
        .iter()
        .filter(|(a, _)| a == "token.proxied")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(proxied.len(), 2, "{entries:?}");
    let get = proxied
        .iter()
        .find(|d| d["method"] == "GET")
        .expect("the GET");
    assert_eq!(get["provider"], "google");
    assert_eq!(get["status"], 200);
    assert_eq!(get["path"], "/api/calendar/v3/users/me");
    let all = serde_json::to_string(&proxied).expect("json");
    assert!(!all.contains("secret") && !all.contains("aGVsbG8"), "{all}");
    for token in fake.inner.lock().expect("lock").issued.iter() {
        assert!(!all.contains(token.as_str()));
    }
}

async fn a_provider_401_refreshes_once_and_retries(backend: Backend) {
    let (app, fake, key) = connected(backend, USER, "google").await;
    fake.revoke_access_tokens();
    let res = call(&app, &key, reqwest::Method::GET, "google/drive/v3/files")
        .send()
        .await
        .expect("request");
    assert_eq!(json_of(res).await["path"], "/api/drive/v3/files");
    let calls = fake.api_calls();
    assert_eq!(calls.len(), 2, "refused once, then retried");
    assert!(!calls[0].authorized && calls[1].authorized);
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 1);

    // Many calls refused the same token at once: one refresh between them.
    fake.revoke_access_tokens();
    fake.inner.lock().expect("lock").delay = Duration::from_millis(300);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let request = call(&app, &key, reqwest::Method::GET, "google/drive/v3/files");
        tasks.push(tokio::spawn(async move {
            request.send().await.expect("request")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").status(), 200);
    }
    assert_eq!(
        fake.inner.lock().expect("lock").refresh_calls,
        2,
        "one more refresh"
    );
}

async fn retry_after_passes_through(backend: Backend) {
    let (app, fake, key) = connected(backend, USER, "google").await;
    for status in [
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        fake.inner
            .lock()
            .expect("lock")
            .api_fail_next
            .push((status, Some(7)));
        let res = call(&app, &key, reqwest::Method::GET, "google/drive/v3/files")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), status.as_u16());
        assert_eq!(res.headers()["retry-after"], "7");
        assert_eq!(
            res.headers()["content-type"],
            "application/json",
            "the provider's body, not ours"
        );
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], "slow down");
    }
}

async fn large_bodies_stream_both_ways(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with_env(
        backend,
        &fake,
        &["google"],
        &[("PROXY_MAX_BODY_BYTES", "8000000")],
    )
    .await;
    app.insert_user(USER).await;
    let session = app.user_token(USER, false);
    connect(&app, &fake, &session, "google").await;
    let key = app.service_key("uploader", &["tokens:read"]).await;

    let upload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = hex(&Sha256::digest(&upload));
    let res = call(
        &app,
        &key,
        reqwest::Method::PUT,
        "google/upload/drive/v3/files",
    )
    .body(upload)
    .send()
    .await
    .expect("request");
    let echo = json_of(res).await;
    assert_eq!(echo["body_len"], 5_000_000);
    assert_eq!(
        echo["body_sha256"],
        digest.as_str(),
        "the body arrived whole"
    );

    let res = call(&app, &key, reqwest::Method::GET, "google/big/6000000")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("body").len(), 6_000_000);

    // An answer past the limit is cut off: the caller never gets all of it.
    let res = call(&app, &key, reqwest::Method::GET, "google/big/9000000")
        .send()
        .await;
    let cut = match res {
        Ok(r) if r.status() == 200 => r.bytes().await.map_or(true, |b| b.len() < 9_000_000),
        Ok(r) => r.status().is_server_error(),
        Err(_) => true,
    };
    assert!(cut, "an answer past the limit is not passed on whole");
}

async fn bodies_past_the_limit_are_refused(backend: Backend) {
    // Past the limit: 413 before any call. (A small limit, so the refused body fits in
    // the socket buffers and the client reads the answer instead of a reset; above the
    // 256 KiB a body may be held, so the chunked one below streams.)
    let fake = FakeProvider::start().await;
    let app = app_with_env(
        backend,
        &fake,
        &["google"],
        &[("PROXY_MAX_BODY_BYTES", "300000")],
    )
    .await;
    app.insert_user(USER).await;
    connect(&app, &fake, &app.user_token(USER, false), "google").await;
    let key = app.service_key("uploader", &["tokens:read"]).await;
    let res = call(
        &app,
        &key,
        reqwest::Method::PUT,
        "google/upload/drive/v3/files",
    )
    .body(vec![0u8; 310_000])
    .send()
    .await
    .expect("request");
    assert_problem(res, 413, "payload_too_large").await;
    assert!(fake.api_calls().is_empty(), "refused before any call");
    // Without a length it streams until the limit, then is cut off: 413 all the same.
    let res = call(
        &app,
        &key,
        reqwest::Method::PUT,
        "google/upload/drive/v3/files",
    )
    .body(reqwest::Body::wrap(Chunks(12)))
    .send()
    .await
    .expect("request");
    assert_problem(res, 413, "payload_too_large").await;
}

/// A body of `n` chunks of 32 KiB whose length is not declared (sent chunked).
struct Chunks(usize);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let chunk = bytes::Bytes::from(vec![b'c'; 32 * 1024]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

/// Sends `path` as written (no client-side normalisation) and returns the status.
async fn raw_status(app: &TestApp, key: &str, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nX-API-Key: {key}\r\nX-User-Id: {USER}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn paths_that_leave_the_api_are_refused_before_any_call(backend: Backend) {
    let (app, fake, key) = connected(backend, USER, "google").await;
    for path in [
        "google/../token",
        "google/a/../../token",
        "google/%2e%2e/token",
        "google/.%2E/token",
        "google/%252e%252e/token",
        "google/a%2f..%2f..%2ftoken",
        "google/a%5c..%5ctoken",
        "google//evil.example/x",
        "google/@evil.example/x",
        "google/x%40evil.example",
        "google/./token",
    ] {
        let status = raw_status(&app, &key, &format!("/internal/proxy/{path}")).await;
        assert_eq!(status, 400, "{path}");
    }
    assert!(
        fake.api_calls().is_empty(),
        "no call reached the provider's API"
    );
    assert_eq!(
        fake.inner.lock().expect("lock").token_calls,
        1,
        "only the connect's"
    );
    // The same request with a plain path goes through.
    assert_eq!(
        raw_status(&app, &key, "/internal/proxy/google/drive/v3/files").await,
        200
    );
}

async fn keys_users_and_integrations_are_checked(backend: Backend) {
    let (app, fake, key) = connected(backend, USER, "google").await;
    let session = app.user_token(USER, false);
    let get = reqwest::Method::GET;

    let reader = app.service_key("reader", &["users:read"]).await;
    let res = call(&app, &reader, get.clone(), "google/drive/v3/files")
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;

    let options = KeyOptions {
        providers: vec!["microsoft".to_owned()],
        scopes: Vec::new(),
        expires_in: None,
    };
    let limited = app
        .state
        .app()
        .create_limited_service_key(&Ctx::system("test"), "ms-only", &["tokens:read"], options)
        .await
        .expect("created")
        .key;
    let limited = limited.expose_secret().to_owned();
    let res = call(&app, &limited, get.clone(), "google/drive/v3/files")
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;
    let entries = audit_actions(&app, &session).await;
    let denied = entries
        .iter()
        .find(|(a, d)| a == "token.proxied" && d["error"] == "forbidden")
        .expect("the refusal is audited");
    assert_eq!(denied.1["provider"], "google");

    let res = app
        .client
        .get(app.url("/internal/proxy/google/drive/v3/files"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    let body = assert_problem(res, 400, "invalid_request").await;
    assert_eq!(body["errors"][0]["field"], "X-User-Id");

    let res = app
        .client
        .get(app.url("/internal/proxy/google/drive/v3/files"))
        .header("x-api-key", &key)
        .header("x-user-id", "user_nobody")
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
    // A user without this integration, and a provider outside the catalog.
    let res = call(&app, &key, get.clone(), "microsoft/v1.0/me")
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
    let res = call(&app, &key, get, "nosuch/x")
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
    assert!(fake.api_calls().is_empty());
}
