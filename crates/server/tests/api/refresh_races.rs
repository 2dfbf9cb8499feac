//! A disconnect (or a deletion of the user) wins over a refresh or a connection in flight
//! (issue 13, item 5): the fake provider holds its token answer at a gate while the test
//! disconnects or deletes, then answers; the late answer must bring nothing back: the
//! integration stays `disconnected` (the user deleted), no ciphertext is written, and the
//! token routes answer 404 (API.md "Other fixed points").

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{app_with, connected, spawn_token_call},
    fake_provider::FakeProvider,
};

both_backends!(
    a_disconnect_wins_over_a_refresh_that_succeeds,
    a_disconnect_wins_over_a_refresh_that_fails,
    a_deletion_wins_over_a_refresh,
    a_deletion_wins_over_a_connection,
);

async fn delete(app: &TestApp, clerk: &str, path: &str) {
    let res = app
        .client
        .delete(app.url(path))
        .bearer_auth(app.user_token(clerk, false))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204, "DELETE {path}");
}

/// Stored ciphertexts of every user (the tests hold one user).
pub async fn ciphertext_rows(app: &TestApp) -> u64 {
    testkit::store::entities::integration_tokens::Entity::find()
        .count(app.state.app().test_db().writer())
        .await
        .expect("count")
}

async fn status_of(app: &TestApp, provider: &str) -> Option<String> {
    testkit::store::entities::integrations::Entity::find()
        .filter(testkit::store::entities::integrations::Column::Provider.eq(provider))
        .one(app.state.app().test_db().writer())
        .await
        .expect("query")
        .map(|i| i.status)
}

/// The token routes answer 404 for `clerk`'s `provider` now.
async fn tokens_are_gone(app: &TestApp, key: &str, clerk: &str, provider: &str) {
    for route in ["get", "refresh"] {
        let res = spawn_token_call(app, key, route, clerk, provider)
            .await
            .expect("task");
        assert_problem(res, 404, "not_found").await;
    }
}

/// Microsoft cannot revoke: the provider answers the held refresh with fresh tokens, which
/// today turned the disconnected integration `active` again and served them.
async fn a_disconnect_wins_over_a_refresh_that_succeeds(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_race1", "microsoft").await;
    let gate = fake.hold_token_answers();
    let refresh = spawn_token_call(&app, &key, "refresh", "user_race1", "microsoft");
    gate.arrived().await;
    delete(&app, "user_race1", "/users/me/integrations/microsoft").await;
    gate.open(1);
    let res = refresh.await.expect("task");
    assert_problem(res, 404, "not_found").await;
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 1);
    assert_eq!(
        status_of(&app, "microsoft").await.as_deref(),
        Some("disconnected")
    );
    assert_eq!(ciphertext_rows(&app).await, 0, "no ciphertext written");
    tokens_are_gone(&app, &key, "user_race1", "microsoft").await;
}

/// Google revokes on disconnect, so the held refresh is refused: today that turned the
/// disconnected integration into `reauth_required`.
async fn a_disconnect_wins_over_a_refresh_that_fails(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_race2", "google").await;
    let gate = fake.hold_token_answers();
    let refresh = spawn_token_call(&app, &key, "refresh", "user_race2", "google");
    gate.arrived().await;
    delete(&app, "user_race2", "/users/me/integrations/google").await;
    gate.open(1);
    let res = refresh.await.expect("task");
    assert_problem(res, 404, "not_found").await;
    assert_eq!(
        status_of(&app, "google").await.as_deref(),
        Some("disconnected")
    );
    assert_eq!(ciphertext_rows(&app).await, 0);
    tokens_are_gone(&app, &key, "user_race2", "google").await;
}

async fn a_deletion_wins_over_a_refresh(backend: Backend) {
    let (app, fake, key) = connected(backend, "user_race3", "microsoft").await;
    let gate = fake.hold_token_answers();
    let refresh = spawn_token_call(&app, &key, "refresh", "user_race3", "microsoft");
    gate.arrived().await;
    delete(&app, "user_race3", "/users/me").await;
    gate.open(1);
    let res = refresh.await.expect("task");
    assert_problem(res, 404, "not_found").await;
    let user = testkit::store::entities::users::Entity::find()
        .one(app.state.app().test_db().writer())
        .await
        .expect("query")
        .expect("the row stays (soft delete)");
    assert!(user.deleted_at.is_some(), "the user stays deleted");
    assert_eq!(
        status_of(&app, "microsoft").await.as_deref(),
        Some("disconnected")
    );
    assert_eq!(ciphertext_rows(&app).await, 0);
    tokens_are_gone(&app, &key, "user_race3", "microsoft").await;
}

/// The user is deleted while the connect flow exchanges its code: no integration and no
/// ciphertext appear for the deleted user.
async fn a_deletion_wins_over_a_connection(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["microsoft"]).await;
    app.insert_user("user_race4").await;
    let session = app.user_token("user_race4", false);
    let start: Value = app
        .client
        .post(app.url("/users/me/integrations/microsoft/authorize"))
        .bearer_auth(&session)
        .json(&json!({}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    let gate = fake.hold_token_answers();
    let complete = {
        let request = app
            .client
            .post(app.url("/users/me/integrations/microsoft"))
            .bearer_auth(&session)
            .json(&json!({"code": code, "state": state}));
        tokio::spawn(async move { request.send().await.expect("request") })
    };
    gate.arrived().await;
    delete(&app, "user_race4", "/users/me").await;
    gate.open(1);
    let res = complete.await.expect("task");
    assert_problem(res, 404, "not_found").await;
    assert_eq!(fake.inner.lock().expect("lock").token_calls, 1);
    assert_eq!(status_of(&app, "microsoft").await, None, "no integration");
    assert_eq!(ciphertext_rows(&app).await, 0, "no ciphertext");
    let key = app.service_key("mail-sync", &["tokens:read"]).await;
    let res = spawn_token_call(&app, &key, "get", "user_race4", "microsoft")
        .await
        .expect("task");
    assert_problem(res, 404, "not_found").await;
}
