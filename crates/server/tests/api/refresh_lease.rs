//! The refresh lease is released on every path (issue 13, item 6): a refresh that fails on
//! our side (a stored ciphertext that does not open), one the provider fails, and one whose
//! request is dropped mid-flight all leave the lease free, so the next refresh of the
//! integration goes ahead at once instead of waiting out the lease (30 s) and answering 502.
//! The "at once" is checked by the lease column being empty and by a second refresh that
//! succeeds under a 10 s client timeout (the lease's wait is 35 s).

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{connected, spawn_token_call},
};

both_backends!(
    a_token_that_does_not_open_releases_the_lease,
    a_provider_error_releases_the_lease,
    a_dropped_request_releases_the_lease,
);

async fn lease_of(app: &TestApp) -> Option<chrono::DateTime<chrono::Utc>> {
    testkit::store::entities::integrations::Entity::find()
        .one(app.state.app().test_db().writer())
        .await
        .expect("query")
        .expect("row")
        .refresh_lease_until
}

/// A refresh that must not wait for a lease: it answers 200 within 10 s.
async fn refresh_at_once(app: &TestApp, key: &str, clerk: &str) -> Value {
    let call = spawn_token_call(app, key, "refresh", clerk, "google");
    let res = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the second refresh did not wait for the lease")
        .expect("task");
    assert_eq!(res.status(), 200, "second refresh");
    res.json().await.expect("json")
}

async fn set_refresh_ciphertext(app: &TestApp, ciphertext: Vec<u8>) {
    use testkit::store::entities::integration_tokens::{Column, Entity};
    Entity::update_many()
        .col_expr(Column::Ciphertext, Expr::value(ciphertext))
        .filter(Column::Kind.eq("refresh"))
        .exec(app.state.app().test_db().writer())
        .await
        .expect("update");
}

async fn a_token_that_does_not_open_releases_the_lease(backend: Backend) {
    let (app, _fake, key) = connected(backend, "user_lease1", "google").await;
    use testkit::store::entities::integration_tokens::{Column, Entity};
    let original = Entity::find()
        .filter(Column::Kind.eq("refresh"))
        .one(app.state.app().test_db().writer())
        .await
        .expect("query")
        .expect("a refresh token")
        .ciphertext;
    // Tampered with in the database: the vault refuses to open it.
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    set_refresh_ciphertext(&app, tampered).await;
    let res = spawn_token_call(&app, &key, "refresh", "user_lease1", "google")
        .await
        .expect("task");
    assert_problem(res, 500, "internal_error").await;
    assert_eq!(lease_of(&app).await, None, "the lease is released");
    set_refresh_ciphertext(&app, original).await;
    let body = refresh_at_once(&app, &key, "user_lease1").await;
    assert_eq!(body["refreshed"], true);
}

async fn a_provider_error_releases_the_lease(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_lease2", "google").await;
    fake.inner.lock().expect("lock").fail_next.push((
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    ));
    // The provider fails; the stored token is still valid, so it is handed out.
    let res = spawn_token_call(&app, &key, "refresh", "user_lease2", "google")
        .await
        .expect("task");
    assert_eq!(res.status(), 200);
    assert_eq!(lease_of(&app).await, None, "the lease is released");
    // Within the retry floor the next refresh answers from storage, without waiting.
    let body = refresh_at_once(&app, &key, "user_lease2").await;
    assert_eq!(body["refreshed"], false);
}

/// The caller goes away while the provider call is in flight: the request's future is
/// dropped, and the lease guard's drop releases the lease.
async fn a_dropped_request_releases_the_lease(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_lease3", "google").await;
    // The grant keeps its refresh token, so the abandoned call cannot invalidate the next.
    fake.inner.lock().expect("lock").omit_refresh = true;
    let gate = fake.hold_token_answers();
    let first = spawn_token_call(&app, &key, "refresh", "user_lease3", "google");
    gate.arrived().await;
    assert!(
        lease_of(&app).await.is_some(),
        "the first refresh holds the lease"
    );
    // Dropping the client's request closes its connection; the server drops the handler.
    first.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while lease_of(&app).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease of the dropped refresh was not released within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.open(2);
    let body = refresh_at_once(&app, &key, "user_lease3").await;
    assert_eq!(body["refreshed"], true);
}
