//! A provider that fails: the still-valid token is served and the integration recovers;
//! a provider's `Retry-After` is honoured.

use testkit::both_backends;

use super::*;

both_backends!(
    a_failing_provider_serves_the_valid_token_then_recovers,
    retry_after_from_the_provider_is_honoured,
);

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
        testkit::store::entities::integrations::Column::LastRefreshAttemptAt,
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
        testkit::store::entities::integrations::Column::LastRefreshAttemptAt,
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
        testkit::store::entities::integrations::Column::LastRefreshAttemptAt,
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
        testkit::store::entities::integrations::Column::RefreshNotBefore,
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
