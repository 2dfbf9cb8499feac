//! Connecting providers over HTTP against a fake provider that checks PKCE: the whole
//! flow, the state rules, the redirect allow list, revocation on disconnect (Google) and
//! local-only disconnect (Microsoft), and no plaintext token anywhere in storage.

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{CALLBACK, app_with, audit_actions, connect, post},
    fake_provider::FakeProvider,
};

both_backends!(
    connect_list_and_disconnect_with_revocation,
    state_redirect_and_provider_rules,
    no_token_or_client_secret_reaches_the_logs,
);

mod revocation;

/// No token the fake ever issued appears in any stored row (and, on SQLite, anywhere in
/// the database files, WAL included).
async fn assert_no_plaintext_tokens(app: &TestApp, fake: &FakeProvider) {
    let issued = fake.inner.lock().expect("lock").issued.clone();
    assert!(!issued.is_empty());
    let db = app.state.app().test_db().writer();
    let mut stored: Vec<Vec<u8>> = Vec::new();
    for t in testkit::store::entities::integration_tokens::Entity::find()
        .all(db)
        .await
        .expect("rows")
    {
        stored.push(t.ciphertext);
    }
    for s in testkit::store::entities::oauth_states::Entity::find()
        .all(db)
        .await
        .expect("rows")
    {
        stored.push(s.pkce_verifier);
    }
    for a in testkit::store::entities::audit_log::Entity::find()
        .all(db)
        .await
        .expect("rows")
    {
        stored.push(serde_json::to_vec(&a.details).expect("json"));
    }
    for i in testkit::store::entities::integrations::Entity::find()
        .all(db)
        .await
        .expect("rows")
    {
        stored.push(format!("{i:?}").into_bytes());
    }
    if app.db.backend() == Backend::Sqlite {
        for entry in walk(app.db.dir()) {
            stored.push(std::fs::read(entry).expect("read"));
        }
    }
    for token in &issued {
        for bytes in &stored {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "a plaintext token is stored"
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn connect_list_and_disconnect_with_revocation(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google"]).await;
    app.insert_user("user_int1").await;
    let token = app.user_token("user_int1", false);

    // The authorization URL carries state, PKCE S256 and Google's offline parameters.
    let res = post(
        &app,
        &token,
        "/users/me/integrations/google/authorize",
        json!({"scopes": ["openid", "email"]}),
    )
    .await;
    let start: Value = res.json().await.expect("json");
    let url = url::Url::parse(start["authorization_url"].as_str().expect("url")).expect("url");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start["state"].as_str().expect("state"));
    assert_eq!(q["state"].len(), 43, "32 random bytes, base64url");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["redirect_uri"], CALLBACK);
    assert_eq!(q["scope"], "openid email");

    let (code, state) = fake.consent(url.as_str());
    let res = post(
        &app,
        &token,
        "/users/me/integrations/google",
        json!({"code": code, "state": state}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let integration: Value = res.json().await.expect("json");
    assert_eq!(integration["provider"], "google");
    assert_eq!(integration["status"], "active");
    assert_eq!(integration["account_id"], "acct-42");
    assert_eq!(integration["account_email"], "someone@provider.test");
    assert_eq!(integration["scopes"], json!(["openid", "email"]));
    assert!(integration["expires_at"].is_string());
    // The same state again: single use.
    let res = post(
        &app,
        &token,
        "/users/me/integrations/google",
        json!({"code": "code-x", "state": state}),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;

    let res = app
        .client
        .get(app.url("/users/me/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    let text = res.text().await.expect("body");
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list["items"][0]["status"], "active");
    for t in &fake.inner.lock().expect("lock").issued {
        assert!(!text.contains(t.as_str()), "no token in answers");
    }
    assert_no_plaintext_tokens(&app, &fake).await;

    // Disconnect revokes the refresh token at the provider and deletes the ciphertexts.
    let refresh = fake.inner.lock().expect("lock").issued[1].clone();
    let res = app
        .client
        .delete(app.url("/users/me/integrations/google"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(fake.inner.lock().expect("lock").revoked, [refresh]);
    let tokens = testkit::store::entities::integration_tokens::Entity::find()
        .all(app.state.app().test_db().writer())
        .await
        .expect("rows");
    assert!(tokens.is_empty(), "ciphertexts deleted");
    let list: Value = app.get_json("/users/me/integrations", &token).await;
    assert_eq!(list["items"][0]["status"], "disconnected");
    let audit = audit_actions(&app, &token).await;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "integration.disconnected",
            "token.revoked",
            "integration.connected"
        ]
    );
    assert_eq!(audit[0].1["revocation"], "revoked");
    assert_no_plaintext_tokens(&app, &fake).await;

    // Reconnecting brings the same integration back to active.
    let again = connect(&app, &fake, &token, "google").await;
    assert_eq!(again["status"], "active");
}

async fn state_redirect_and_provider_rules(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google", "github"]).await;
    app.insert_user("user_int2").await;
    app.insert_user("user_int3").await;
    let alice = app.user_token("user_int2", false);
    let bob = app.user_token("user_int3", false);

    // Redirect URIs: an allowed one is used, anything else is 422.
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/google/authorize",
        json!({"redirect_uri": "https://app.example/other"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    for bad in ["https://evil.example/cb", "not a url"] {
        let res = post(
            &app,
            &alice,
            "/users/me/integrations/google/authorize",
            json!({"redirect_uri": bad}),
        )
        .await;
        let body = assert_problem(res, 422, "validation_error").await;
        assert_eq!(body["errors"][0]["field"], "redirect_uri");
    }
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/google/authorize",
        json!({"scopes": ["has space"]}),
    )
    .await;
    assert_problem(res, 422, "validation_error").await;
    // Unknown provider: 404; known but not configured here: 409.
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/myspace/authorize",
        json!({}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/zoom/authorize",
        json!({}),
    )
    .await;
    assert_problem(res, 409, "conflict").await;
    // No body at all is fine.
    let res = app
        .client
        .post(app.url("/users/me/integrations/github/authorize"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);

    // Another user's state, or the state of another provider: 400, and the owner can
    // still use it afterwards.
    let start: Value = post(
        &app,
        &alice,
        "/users/me/integrations/google/authorize",
        json!({}),
    )
    .await
    .json()
    .await
    .expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    let res = post(
        &app,
        &bob,
        "/users/me/integrations/google",
        json!({"code": code, "state": state}),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/github",
        json!({"code": code, "state": state}),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/google",
        json!({"code": code, "state": state}),
    )
    .await;
    assert_eq!(res.status(), 200);

    // An expired state: 400.
    let start: Value = post(
        &app,
        &alice,
        "/users/me/integrations/github/authorize",
        json!({}),
    )
    .await
    .json()
    .await
    .expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    expire_states(&app).await;
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/github",
        json!({"code": code, "state": state}),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;

    // The provider refuses the code: 502, nothing connected.
    let start: Value = post(
        &app,
        &alice,
        "/users/me/integrations/github/authorize",
        json!({}),
    )
    .await
    .json()
    .await
    .expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    fake.inner
        .lock()
        .expect("lock")
        .fail_next
        .push((axum::http::StatusCode::BAD_REQUEST, "invalid_grant"));
    let res = post(
        &app,
        &alice,
        "/users/me/integrations/github",
        json!({"code": code, "state": state}),
    )
    .await;
    let body = assert_problem(res, 502, "provider_error").await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("invalid_grant")),
        "{body}"
    );
    let list: Value = app.get_json("/users/me/integrations", &alice).await;
    let providers: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["provider"].as_str())
        .collect();
    assert_eq!(providers, ["google"]);
    // Someone else's integrations: 403.
    let res = app
        .client
        .get(app.url("/users/user_int2/integrations"))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;
}

async fn expire_states(app: &TestApp) {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    testkit::store::entities::oauth_states::Entity::update_many()
        .col_expr(
            testkit::store::entities::oauth_states::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(testkit::store::entities::oauth_states::Column::UsedAt.is_null())
        .exec(app.state.app().test_db().writer())
        .await
        .expect("update");
}

async fn no_token_or_client_secret_reaches_the_logs(backend: Backend) {
    use server::{config::LogFormat, telemetry};
    let logs = crate::traces::Capture::default();
    let writer = logs.clone();
    let _telemetry = telemetry::init_with_writer(
        &telemetry::Settings {
            log_format: LogFormat::Json,
            log_dir: None,
            log_retention_days: 1,
            otlp_endpoint: None,
        },
        move || writer.clone(),
    )
    .expect("telemetry installs");
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google"]).await;
    app.insert_user("user_int6").await;
    let token = app.user_token("user_int6", false);
    connect(&app, &fake, &token, "google").await;
    let key = app
        .service_key("logs-check", &["tokens:read", "tokens:refresh"])
        .await;
    let body = json!({"user_id": "user_int6", "provider": "google"});
    // A hand-out, a refresh, a failing refresh and a disconnect: every path that logs.
    for path in ["/internal/tokens/get", "/internal/tokens/refresh"] {
        let res = app
            .client
            .post(app.url(path))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
    }
    fake.inner.lock().expect("lock").fail_next.push((
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    ));
    app.client
        .post(app.url("/internal/tokens/refresh"))
        .header("x-api-key", &key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let res = app
        .client
        .delete(app.url("/users/me/integrations/google"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    app.state.app().access_log().flush().await;

    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        text.contains("/internal/tokens/get"),
        "the requests were logged"
    );
    let mut secrets = fake.inner.lock().expect("lock").issued.clone();
    secrets.push(crate::fake_provider::CLIENT_SECRET.to_owned());
    secrets.push(key.clone());
    secrets.push(token.clone());
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret reached the logs");
    }
}
