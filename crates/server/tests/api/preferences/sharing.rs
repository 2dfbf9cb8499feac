//! Preferences leaving their owner: export and import (including a v0 document), and who
//! besides the owner may read them (an admin, a service key with `preferences:read`).

use testkit::both_backends;

use super::*;

both_backends!(
    export_import_round_trip_and_v0_document,
    only_the_owner_an_admin_or_a_service_may_read,
);

async fn export_import_round_trip_and_v0_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, alice_token) = owner(&app, "user_prefs5").await;
    let (bob, bob_token) = owner(&app, "user_prefs6").await;
    let change = json!({"ui": {"language": "de-DE"}, "integrations": {"default_calendar_provider": "google", "sync_frequency_minutes": 60}});
    let (_, alice_doc) = doc(send(
        app.client
            .put(&alice)
            .bearer_auth(&alice_token)
            .json(&change),
    )
    .await)
    .await;

    let res = send(
        app.client
            .get(format!("{alice}/export"))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(res.status(), 200);
    let export: Value = res.json().await.expect("json");
    assert_eq!(export["schema_version"], 1);
    assert_eq!(export["preferences"], change, "only the user's own choices");

    let (etag, bob_doc) = doc(send(
        app.client
            .post(format!("{bob}/import"))
            .bearer_auth(&bob_token)
            .header(header::IF_MATCH, "\"0\"")
            .json(&export),
    )
    .await)
    .await;
    assert_eq!(etag, "\"1\"");
    for category in ["ui", "notifications", "ai", "integrations", "privacy"] {
        assert_eq!(bob_doc[category], alice_doc[category], "{category}");
    }

    // A version-0 document (before `ui.theme` and `digest_frequency`) migrates on import.
    let v0 = json!({"schema_version": 0, "preferences": {"ui": {"dark_mode": false}, "notifications": {"digest": "off"}}});
    let (_, migrated) = doc(send(
        app.client
            .post(format!("{bob}/import"))
            .bearer_auth(&bob_token)
            .json(&v0),
    )
    .await)
    .await;
    assert_eq!(migrated["ui"]["theme"], "light");
    assert_eq!(migrated["notifications"]["digest_frequency"], "never");
    // Import replaces: what the v0 document does not name is back to the default.
    assert_eq!(migrated["ui"]["language"], "en");

    // A bad document: 422 by path, nothing written.
    for (bad, field) in [
        (
            json!({"schema_version": 0, "preferences": {"ui": {"dark_mode": "yes"}}}),
            "preferences.ui.dark_mode",
        ),
        (
            json!({"schema_version": 9, "preferences": {}}),
            "schema_version",
        ),
        (
            json!({"schema_version": 1, "preferences": {"ui": {"theme": "neon"}}}),
            "preferences.ui.theme",
        ),
    ] {
        let res = send(
            app.client
                .post(format!("{bob}/import"))
                .bearer_auth(&bob_token)
                .json(&bad),
        )
        .await;
        let body = assert_problem(res, 422, "validation_error").await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let (etag, _) = doc(send(app.client.get(&bob).bearer_auth(&bob_token)).await).await;
    assert_eq!(etag, "\"2\"");
}

async fn only_the_owner_an_admin_or_a_service_may_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, alice_token) = owner(&app, "user_prefs7").await;
    let (_bob, bob_token) = owner(&app, "user_prefs8").await;
    let res = send(
        app.client
            .patch(&alice)
            .bearer_auth(&alice_token)
            .json(&json!({"ui": {"theme": "dark"}})),
    )
    .await;
    assert_eq!(res.status(), 200);

    // No credentials: 401 with the scheme; someone else: 403, for existing and unknown
    // users alike.
    let res = send(app.client.get(&alice)).await;
    assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_problem(res, 401, "unauthorized").await;
    let res = send(app.client.get(&alice).bearer_auth(&bob_token)).await;
    assert_problem(res, 403, "forbidden").await;
    let res = send(
        app.client
            .put(&alice)
            .bearer_auth(&bob_token)
            .json(&json!({})),
    )
    .await;
    assert_problem(res, 403, "forbidden").await;
    let unknown = app.url("/users/user_nobody/preferences");
    let res = send(app.client.get(&unknown).bearer_auth(&bob_token)).await;
    assert_problem(res, 403, "forbidden").await;

    // An admin reads anyone's; an unknown user is then 404.
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    let (_, body) = doc(send(app.client.get(&alice).bearer_auth(&admin)).await).await;
    assert_eq!(body["ui"]["theme"], "dark");
    let res = send(app.client.get(&unknown).bearer_auth(&admin)).await;
    assert_problem(res, 404, "not_found").await;

    // Services read through /internal with `preferences:read`, by id or Clerk id.
    let reader = app.service_key("prefs-reader", &["preferences:read"]).await;
    let other = app.service_key("users-reader", &["users:read"]).await;
    let internal = app.url("/internal/users/user_prefs7/preferences");
    let (etag, body) =
        doc(send(app.client.get(&internal).header("x-api-key", &reader)).await).await;
    assert_eq!(etag, "\"1\"");
    assert_eq!(body["ui"]["theme"], "dark");
    let by_id = alice.replace("/users/", "/internal/users/");
    let (_, body) = doc(send(app.client.get(&by_id).header("x-api-key", &reader)).await).await;
    assert_eq!(body["ui"]["theme"], "dark");
    let res = send(app.client.get(&internal).header("x-api-key", &other)).await;
    assert_problem(res, 403, "forbidden").await;
    let res = send(app.client.get(&internal).bearer_auth(&alice_token)).await;
    assert_problem(res, 403, "forbidden").await;
    let res = send(app.client.get(&internal)).await;
    assert_problem(res, 401, "unauthorized").await;
    let res = send(
        app.client
            .get(app.url("/internal/users/me/preferences"))
            .header("x-api-key", &reader),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;
    let res = send(
        app.client
            .get(app.url("/internal/users/user_nobody/preferences"))
            .header("x-api-key", &reader),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    // A service key cannot write through the user routes without `admin`.
    let res = send(
        app.client
            .put(&alice)
            .header("x-api-key", &reader)
            .json(&json!({})),
    )
    .await;
    assert_problem(res, 403, "forbidden").await;
}
