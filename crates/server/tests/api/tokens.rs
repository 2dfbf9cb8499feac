//! The token service through `POST /internal/tokens/get` and `/refresh`, against the fake
//! provider: hand-out and audit, scope checks, single flight (one process and two
//! replicas), rotated and omitted refresh tokens, `invalid_grant`, a failing provider.

use axum::http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{audit_actions, connect, connected},
    fake_provider::FakeProvider,
};

both_backends!(
    tokens_are_handed_out_checked_and_audited,
    concurrent_gets_refresh_once,
    two_replicas_refresh_once,
    rotated_and_omitted_refresh_tokens,
    invalid_grant_requires_reauthorization,
    a_failing_provider_serves_the_valid_token_then_recovers,
    the_sweep_refreshes_tokens_before_they_expire,
    the_health_check_finds_revoked_grants,
    retry_after_from_the_provider_is_honoured,
);

async fn get(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/internal/tokens/get"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// Moves the stored expiry to `seconds` from now (negative: expired).
async fn expire_in(app: &TestApp, seconds: i64) {
    set_time(
        app,
        store::entities::integrations::Column::ExpiresAt,
        seconds,
    )
    .await;
}

/// Sets a time column of every integration to `seconds` from now (negative: in the past).
async fn set_time(app: &TestApp, column: store::entities::integrations::Column, seconds: i64) {
    store::entities::integrations::Entity::update_many()
        .col_expr(
            column,
            Expr::value(chrono::Utc::now() + chrono::Duration::seconds(seconds)),
        )
        .exec(app.state.app().db().writer())
        .await
        .expect("update");
}

async fn integration(app: &TestApp) -> store::entities::integrations::Model {
    store::entities::integrations::Entity::find()
        .filter(store::entities::integrations::Column::Provider.eq("google"))
        .one(app.state.app().db().writer())
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

async fn a_failing_provider_serves_the_valid_token_then_recovers(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok6", "google").await;
    let old = last_access(&fake);
    let body = json!({"user_id": "user_tok6", "provider": "google"});
    // Expiring soon, provider down: the still-valid token, status refresh_failed.
    expire_in(&app, 60).await;
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
    let res = get(&app, &key, body.clone()).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["access_token"], old.as_str());
    assert_eq!(answer["refreshed"], false);
    let i = integration(&app).await;
    assert_eq!(i.status, "refresh_failed");
    assert!(i.last_error.is_some_and(|e| !e.contains(&old)));
    // Expired, and within 30 s of the failed attempt: 502 without calling the provider.
    expire_in(&app, -5).await;
    let calls = fake.inner.lock().expect("lock").token_calls;
    let res = get(&app, &key, body.clone()).await;
    assert_problem(res, 502, "provider_error").await;
    assert_eq!(fake.inner.lock().expect("lock").token_calls, calls);
    // After the floor, the provider is back: refreshed, active again, and the change is
    // audited.
    set_time(
        &app,
        store::entities::integrations::Column::LastRefreshAttemptAt,
        -60,
    )
    .await;
    let res = get(&app, &key, body.clone()).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["refreshed"], true);
    assert_ne!(answer["access_token"], old.as_str());
    assert_eq!(integration(&app).await.status, "active");
    let token = app.user_token("user_tok6", false);
    // Diagnostics: expiry, scopes, the attempts with their errors, a live user-info call.
    let diag: Value = app
        .get_json("/users/me/integrations/google/diagnostics", &token)
        .await;
    assert_eq!(diag["status"], "active");
    assert!(
        diag["expires_in_seconds"]
            .as_i64()
            .is_some_and(|s| s > 3000)
    );
    assert_eq!(diag["missing_default_scopes"], json!(["profile"]));
    let outcomes: Vec<&str> = diag["recent_refreshes"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["success", "failure"]);
    assert!(
        diag["recent_refreshes"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable"))
    );
    assert_eq!(diag["userinfo_check"]["result"], "ok");
    assert!(!diag.to_string().contains(&last_access(&fake)));
    let audit = audit_actions(&app, &token).await;
    let to: Vec<&Value> = audit
        .iter()
        .filter(|(a, _)| a == "integration.status_changed")
        .map(|(_, d)| &d["to"])
        .collect();
    assert_eq!(to, [&json!("active"), &json!("refresh_failed")]);
    // Failure and recovery are events, in that order.
    let changes: Vec<(Value, Value)> = crate::events::stored(&app, "user_tok6")
        .await
        .into_iter()
        .filter(|(t, _)| t == "integration.status_changed")
        .map(|(_, d)| (d["from"].clone(), d["to"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("active"), json!("refresh_failed")),
            (json!("refresh_failed"), json!("active"))
        ]
    );
    // Provider down and the token expired (after the floor): 502.
    expire_in(&app, -5).await;
    set_time(
        &app,
        store::entities::integrations::Column::LastRefreshAttemptAt,
        -60,
    )
    .await;
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
    let res = get(&app, &key, body).await;
    assert_problem(res, 502, "provider_error").await;
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
    assert_eq!(stats["refreshes_24h"], json!({"success": 1, "failure": 2}));
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

async fn the_sweep_refreshes_tokens_before_they_expire(backend: Backend) {
    let (app, fake, _key) = connected(backend, "user_tok7", "google").await;
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    let run = || async {
        let res = app
            .client
            .post(app.url("/admin/jobs/token_refresh_sweep/run"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 202);
        app.state.jobs().run_until_idle().await.expect("jobs run")
    };
    // Far from expiry: left alone.
    expire_in(&app, 3 * 3600).await;
    run().await;
    assert_eq!(
        fake.inner.lock().expect("lock").refresh_calls,
        0,
        "not due yet"
    );
    // Expiring within the next sweep interval plus buffer: refreshed ahead of time.
    expire_in(&app, 30 * 60).await;
    run().await;
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 1);
    let i = integration(&app).await;
    assert!(
        i.expires_at
            .is_some_and(|t| t > chrono::Utc::now() + chrono::Duration::minutes(50))
    );
    assert!(i.last_refreshed_at.is_some());
}

async fn the_health_check_finds_revoked_grants(backend: Backend) {
    let (app, fake, _key) = connected(backend, "user_tok8", "google").await;
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    let check = || async {
        set_time(
            &app,
            store::entities::integrations::Column::LastCheckedAt,
            -3600,
        )
        .await;
        let res = app
            .client
            .post(app.url("/admin/jobs/integration_health/run"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 202);
        app.state.jobs().run_until_idle().await.expect("jobs run")
    };
    // A healthy grant: user info answers, the check is recorded, no provider refresh.
    check().await;
    let i = integration(&app).await;
    assert_eq!(i.status, "active");
    assert!(
        i.last_checked_at
            .is_some_and(|t| t > chrono::Utc::now() - chrono::Duration::minutes(1))
    );
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 0);
    // The user revokes the app at the provider: the next check finds out before any
    // service asks, and the integration needs re-authorization.
    let refresh = fake.inner.lock().expect("lock").issued[1].clone();
    let body = format!(
        "token={refresh}&client_id={}&client_secret={}",
        crate::fake_provider::CLIENT_ID,
        crate::fake_provider::CLIENT_SECRET
    );
    let res = app
        .client
        .post(fake.url("/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    check().await;
    assert_eq!(integration(&app).await.status, "reauth_required");
    let token = app.user_token("user_tok8", false);
    let audit = audit_actions(&app, &token).await;
    let changed = audit
        .iter()
        .find(|(a, _)| a == "integration.status_changed")
        .expect("status change audited");
    assert_eq!(changed.1["to"], "reauth_required");
}

async fn retry_after_from_the_provider_is_honoured(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_tok9", "google").await;
    let old = last_access(&fake);
    let body = json!({"user_id": "user_tok9", "provider": "google"});
    expire_in(&app, 60).await;
    {
        let mut f = fake.inner.lock().expect("lock");
        f.fail_next
            .push((StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        f.retry_after = Some(600);
    }
    // Rate limited (429 is transient whatever the error code): the valid token.
    let res = get(&app, &key, body.clone()).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["access_token"], old.as_str());
    let i = integration(&app).await;
    assert_eq!(i.status, "refresh_failed");
    let not_before = i.refresh_not_before.expect("Retry-After recorded");
    assert!(not_before > chrono::Utc::now() + chrono::Duration::seconds(590));
    // Past the 30 s floor but before Retry-After: no provider call.
    set_time(
        &app,
        store::entities::integrations::Column::LastRefreshAttemptAt,
        -60,
    )
    .await;
    let calls = fake.inner.lock().expect("lock").token_calls;
    let res = get(&app, &key, body.clone()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(fake.inner.lock().expect("lock").token_calls, calls);
    // Once it has passed, the next hand-out refreshes and clears it.
    set_time(
        &app,
        store::entities::integrations::Column::RefreshNotBefore,
        -1,
    )
    .await;
    let res = get(&app, &key, body).await;
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["refreshed"], true);
    let i = integration(&app).await;
    assert_eq!(i.status, "active");
    assert!(i.refresh_not_before.is_none());
}
