//! The token work no request asks for: the refresh sweep renews tokens before they
//! expire, and the health check finds grants the provider has revoked.

use testkit::both_backends;

use super::*;

both_backends!(
    the_sweep_refreshes_tokens_before_they_expire,
    the_health_check_finds_revoked_grants,
);

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
            testkit::store::entities::integrations::Column::LastCheckedAt,
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
