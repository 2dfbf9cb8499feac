//! Connecting through the real flow against the [`FakeProvider`]: an app whose providers
//! point at the fake, the authorize → consent → complete round trip, and the calls the
//! token tests make on a connected integration. Shared by every test that needs a real
//! sealed token (tokens, races, leases, events, replicas, the CLI's key rotation).

use sea_orm::{EntityTrait, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    common::{Backend, TestApp, spawn_app_with},
    fake_provider::FakeProvider,
};

pub const CALLBACK: &str = "https://app.example/oauth/callback";

pub async fn app_with(backend: Backend, fake: &FakeProvider, providers: &[&str]) -> TestApp {
    app_with_env(backend, fake, providers, &[]).await
}

/// [`app_with`] with `extra` environment on top.
pub async fn app_with_env(
    backend: Backend,
    fake: &FakeProvider,
    providers: &[&str],
    extra: &[(&str, &str)],
) -> TestApp {
    let mut env: Vec<(String, String)> = vec![
        ("OAUTH_REDIRECT_URI".to_owned(), CALLBACK.to_owned()),
        (
            "OAUTH_ALLOWED_REDIRECT_URIS".to_owned(),
            format!("{CALLBACK},https://app.example/other"),
        ),
    ];
    for p in providers {
        let mut e = fake.env(p);
        if *p == "microsoft" {
            // Microsoft has no revocation endpoint: keep the catalog's answer.
            e.retain(|(k, _)| !k.ends_with("_REVOKE_URL"));
        }
        env.extend(e);
    }
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_with(backend, &pairs).await
}

pub async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// Authorize, consent at the fake, complete: the integration answer.
pub async fn connect(app: &TestApp, fake: &FakeProvider, token: &str, provider: &str) -> Value {
    let res = post(
        app,
        token,
        &format!("/users/me/integrations/{provider}/authorize"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let start: Value = res.json().await.expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    assert_eq!(state, start["state"].as_str().expect("state"));
    let res = post(
        app,
        token,
        &format!("/users/me/integrations/{provider}"),
        json!({"code": code, "state": state}),
    )
    .await;
    assert_eq!(res.status(), 200, "complete");
    res.json().await.expect("json")
}

pub async fn audit_actions(app: &TestApp, token: &str) -> Vec<(String, Value)> {
    let body: Value = app.get_json("/users/me/audit", token).await;
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

/// An app with `provider` connected for `clerk`, and a `tokens:read`+`tokens:refresh` key.
pub async fn connected(
    backend: Backend,
    clerk: &str,
    provider: &str,
) -> (TestApp, FakeProvider, String) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &[provider]).await;
    app.insert_user(clerk).await;
    let session = app.user_token(clerk, false);
    connect(&app, &fake, &session, provider).await;
    let key = app
        .service_key("mail-sync", &["tokens:read", "tokens:refresh"])
        .await;
    (app, fake, key)
}

/// `POST /internal/tokens/{route}` with `body`, as the service `key`.
pub async fn token_call(app: &TestApp, key: &str, route: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/internal/tokens/{route}")))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// `POST /internal/tokens/{route}` for `clerk`'s `provider`, on its own task.
pub fn spawn_token_call(
    app: &TestApp,
    key: &str,
    route: &str,
    clerk: &str,
    provider: &str,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .client
        .post(app.url(&format!("/internal/tokens/{route}")))
        .header("x-api-key", key)
        .json(&json!({"user_id": clerk, "provider": provider}));
    tokio::spawn(async move { request.send().await.expect("request") })
}

/// Moves the stored expiry to `seconds` from now (negative: expired).
pub async fn expire_in(app: &TestApp, seconds: i64) {
    set_time(
        app,
        testkit::store::entities::integrations::Column::ExpiresAt,
        seconds,
    )
    .await;
}

/// Sets a time column of every integration to `seconds` from now (negative: in the past).
pub async fn set_time(
    app: &TestApp,
    column: testkit::store::entities::integrations::Column,
    seconds: i64,
) {
    testkit::store::entities::integrations::Entity::update_many()
        .col_expr(
            column,
            Expr::value(chrono::Utc::now() + chrono::Duration::seconds(seconds)),
        )
        .exec(app.state.app().test_db().writer())
        .await
        .expect("update");
}
