//! Grants at the provider when a connection ends: Microsoft's disconnect is local only (it
//! has no revocation endpoint), and deleting a user revokes every grant they had.

use testkit::both_backends;

use super::*;

both_backends!(
    microsoft_disconnect_is_local_only,
    deleting_the_user_revokes_their_grants,
);

async fn microsoft_disconnect_is_local_only(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["microsoft"]).await;
    app.insert_user("user_int4").await;
    let token = app.user_token("user_int4", false);
    let integration = connect(&app, &fake, &token, "microsoft").await;
    assert_eq!(integration["status"], "active");
    let res = app
        .client
        .delete(app.url("/users/me/integrations/microsoft"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert!(
        fake.inner.lock().expect("lock").revoked.is_empty(),
        "no provider call"
    );
    let tokens = testkit::store::entities::integration_tokens::Entity::find()
        .all(app.state.app().test_db().writer())
        .await
        .expect("rows");
    assert!(tokens.is_empty());
    let audit = audit_actions(&app, &token).await;
    assert_eq!(audit[0].0, "integration.disconnected");
    assert_eq!(audit[0].1["revocation"], "not_supported");
    assert_eq!(audit[0].1["local_only"], true);
    // Disconnecting twice is harmless; never connected is 404.
    let res = app
        .client
        .delete(app.url("/users/me/integrations/microsoft"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .delete(app.url("/users/me/integrations/google"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
}

async fn deleting_the_user_revokes_their_grants(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google", "microsoft"]).await;
    app.insert_user("user_int5").await;
    let token = app.user_token("user_int5", false);
    connect(&app, &fake, &token, "google").await;
    let google_refresh = fake.inner.lock().expect("lock").issued[1].clone();
    connect(&app, &fake, &token, "microsoft").await;
    let res = app
        .client
        .delete(app.url("/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(fake.inner.lock().expect("lock").revoked, [google_refresh]);
    let tokens = testkit::store::entities::integration_tokens::Entity::find()
        .all(app.state.app().test_db().writer())
        .await
        .expect("rows");
    assert!(tokens.is_empty(), "ciphertexts deleted");
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    let audit: Value = app.get_json("/audit?action=user.deleted", &admin).await;
    let details = &audit["items"][0]["details"];
    assert_eq!(
        details["revocations"],
        json!({"google": "revoked", "microsoft": "not_supported"}),
        "{audit}"
    );
    assert_eq!(details["stored_tokens_deleted"], 4);
}
