//! The token service through `POST /internal/tokens/get` and `/refresh`, against the fake
//! provider: hand-out and audit, scope checks, single flight (one process and two
//! replicas), rotated and omitted refresh tokens, `invalid_grant`, a failing provider.

use axum::http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{audit_actions, connect, connected, expire_in, set_time},
    fake_provider::FakeProvider,
};

both_backends!(
    tokens_are_handed_out_checked_and_audited,
    concurrent_gets_refresh_once,
    two_replicas_refresh_once,
    rotated_and_omitted_refresh_tokens,
    invalid_grant_requires_reauthorization,
);

mod background;
mod provider_faults;

async fn get(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/internal/tokens/get"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn integration(app: &TestApp) -> testkit::store::entities::integrations::Model {
    testkit::store::entities::integrations::Entity::find()
        .filter(testkit::store::entities::integrations::Column::Provider.eq("google"))
        .one(app.state.app().test_db().writer())
        .await
        .expect("query")
        .expect("row")
}

fn last_access(fake: &FakeProvider) -> String {
    fake.inner
        .lock()
        .expect("lock")
        .issued
        .iter()
        .rev()
        .find(|t| t.starts_with("AT-"))
        .cloned()
        .expect("an access token")
}

async fn tokens_are_handed_out_checked_and_audited(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok1", "google").await;
    let res = get(
        &app,
        &key,
        json!({"user_id": "user_tok1", "provider": "google"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["access_token"], last_access(&fake));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["refreshed"], false);
    assert_eq!(body["provider"], "google");
    assert_eq!(body["account_email"], "someone@provider.test");
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 0);

    // Scopes the token lacks: 403 with the missing ones.
    let res = get(&app, &key, json!({"user_id": "user_tok1", "provider": "google", "scopes": ["email", "https://mail.test/read"]})).await;
    let body = assert_problem(res, 403, "insufficient_scope").await;
    assert_eq!(body["missing_scopes"], json!(["https://mail.test/read"]));
    // Who and what: permission, user, provider.
    let other = app.service_key("reader", &["users:read"]).await;
    let res = get(
        &app,
        &other,
        json!({"user_id": "user_tok1", "provider": "google"}),
    )
    .await;
    assert_problem(res, 403, "forbidden").await;
    let res = get(
        &app,
        &key,
        json!({"user_id": "user_nobody", "provider": "google"}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    let res = get(&app, &key, json!({"user_id": "me", "provider": "google"})).await;
    assert_problem(res, 422, "validation_error").await;
    let res = get(
        &app,
        &key,
        json!({"user_id": "user_tok1", "provider": "github"}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    let res = get(
        &app,
        &key,
        json!({"user_id": "user_tok1", "provider": "google", "min_validity_seconds": 999999}),
    )
    .await;
    assert_problem(res, 422, "validation_error").await;

    // Every hand-out (and refusal) is audited with the calling key's name.
    app.state.app().access_log().flush().await;
    let token = app.user_token("user_tok1", false);
    let audit = audit_actions(&app, &token).await;
    let accessed: Vec<&(String, Value)> = audit
        .iter()
        .filter(|(a, _)| a == "token.accessed")
        .collect();
    assert_eq!(accessed.len(), 3, "{audit:?}");
    let text = serde_json::to_string(&audit).expect("json");
    assert!(
        !text.contains(&last_access(&fake)),
        "no token in the audit log"
    );

    // The user and stats routes for services.
    let users_key = app.service_key("profile", &["users:read"]).await;
    let res = app
        .client
        .get(app.url("/internal/users/user_tok1"))
        .header("x-api-key", &users_key)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.expect("json");
    assert_eq!(user["clerk_user_id"], "user_tok1");
    let stats_key = app.service_key("dash", &["integrations:read"]).await;
    let stats: Value = app
        .client
        .get(app.url("/internal/integrations/stats"))
        .header("x-api-key", &stats_key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats["items"],
        json!([{"provider": "google", "status": "active", "count": 1}])
    );
    assert!(stats["refresh_success_rate_24h"].is_null());
}

async fn concurrent_gets_refresh_once(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok2", "google").await;
    expire_in(&app, 60).await;
    fake.inner.lock().expect("lock").delay = std::time::Duration::from_millis(200);
    let calls = (0..50).map(|_| {
        let client = app.client.clone();
        let url = app.url("/internal/tokens/get");
        let key = key.clone();
        async move {
            client
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"user_id": "user_tok2", "provider": "google"}))
                .send()
                .await
                .expect("request")
        }
    });
    let answers = futures_join_all(calls).await;
    let new = last_access(&fake);
    let mut refreshed = 0;
    for res in answers {
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert_eq!(
            body["access_token"],
            new.as_str(),
            "everyone gets the new token"
        );
        refreshed += usize::from(body["refreshed"] == true);
    }
    assert_eq!(
        fake.inner.lock().expect("lock").refresh_calls,
        1,
        "one provider call"
    );
    assert_eq!(refreshed, 1);
    let i = integration(&app).await;
    assert!(i.refresh_lease_until.is_none(), "lease released");
    assert_eq!(i.status, "active");
}

async fn two_replicas_refresh_once(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok3", "google").await;
    let env: Vec<(String, String)> = fake.env("google");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let replica = app.spawn_replica(&pairs).await;
    expire_in(&app, 60).await;
    fake.inner.lock().expect("lock").delay = std::time::Duration::from_millis(300);
    let body = json!({"user_id": "user_tok3", "provider": "google"});
    let calls = (0..40).map(|i| {
        let url = if i % 2 == 0 {
            app.url("/internal/tokens/get")
        } else {
            replica.url("/internal/tokens/get")
        };
        app.client
            .post(url)
            .header("x-api-key", &key)
            .json(&body)
            .send()
    });
    let answers = futures_join_all(calls).await;
    let new = last_access(&fake);
    for res in answers {
        let res = res.expect("request");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["access_token"], new.as_str());
    }
    assert_eq!(
        fake.inner.lock().expect("lock").refresh_calls,
        1,
        "one provider call across replicas"
    );
}

async fn rotated_and_omitted_refresh_tokens(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok4", "google").await;
    let refresh = |app: &TestApp| {
        app.client
            .post(app.url("/internal/tokens/refresh"))
            .header("x-api-key", &key)
            .json(&json!({"user_id": "user_tok4", "provider": "google"}))
            .send()
    };
    // Each refresh rotates the refresh token; the fake accepts only the newest one, so a
    // second success proves the rotated one was stored.
    for _ in 0..2 {
        let res = refresh(&app).await.expect("request");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["refreshed"], true);
        assert_eq!(body["access_token"], last_access(&fake));
    }
    // Google-style answers without a refresh token keep the stored one.
    fake.inner.lock().expect("lock").omit_refresh = true;
    for _ in 0..2 {
        let res = refresh(&app).await.expect("request");
        assert_eq!(res.status(), 200, "the kept refresh token still works");
    }
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 4);
}

async fn invalid_grant_requires_reauthorization(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok5", "google").await;
    expire_in(&app, -10).await;
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((StatusCode::BAD_REQUEST, "invalid_grant"));
    let body = json!({"user_id": "user_tok5", "provider": "google"});
    let res = get(&app, &key, body.clone()).await;
    assert_problem(res, 409, "reauthorization_required").await;
    assert_eq!(integration(&app).await.status, "reauth_required");
    let calls = fake.inner.lock().expect("lock").token_calls;
    // Terminal: no further provider calls, on any route.
    for _ in 0..3 {
        let res = get(&app, &key, body.clone()).await;
        assert_problem(res, 409, "reauthorization_required").await;
    }
    let token = app.user_token("user_tok5", false);
    let res = app
        .client
        .put(app.url("/users/me/integrations/google/refresh"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_problem(res, 409, "reauthorization_required").await;
    assert_eq!(fake.inner.lock().expect("lock").token_calls, calls);
    let audit = audit_actions(&app, &token).await;
    let changed = audit
        .iter()
        .find(|(a, _)| a == "integration.status_changed")
        .expect("status change audited");
    assert_eq!(changed.1["to"], "reauth_required");
    // The transition is an event too, stored with it.
    let events = crate::events::stored(&app, "user_tok5").await;
    let (_, data) = events
        .iter()
        .find(|(t, _)| t == "integration.status_changed")
        .expect("status change event");
    assert_eq!(
        (&data["provider"], &data["from"], &data["to"]),
        (
            &json!("google"),
            &json!("active"),
            &json!("reauth_required")
        )
    );
    // Reconnecting restores it.
    connect(&app, &fake, &token, "google").await;
    let res = get(&app, &key, body).await;
    assert_eq!(res.status(), 200);
}

/// Runs the futures concurrently (no extra crate for `join_all`).
async fn futures_join_all<F, T>(futs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
