//! `GET /providers`: the catalog, public, with `configured` from this deployment's
//! credentials, and an operator's file adding a provider.

use serde_json::Value;
use testkit::both_backends;

use crate::common::{Backend, spawn_app, spawn_app_with};

both_backends!(catalog_is_public_and_says_what_is_configured);

async fn catalog_is_public_and_says_what_is_configured(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("providers.toml");
    std::fs::write(
        &file,
        r#"
[acme]
display_name = "Acme ID"
authorize_url = "https://id.acme.test/authorize"
token_url = "https://id.acme.test/token"
default_scopes = ["openid", "offline_access"]
"#,
    )
    .expect("write");
    let app = spawn_app_with(
        backend,
        &[
            ("OAUTH_PROVIDERS_FILE", file.to_str().expect("utf-8 path")),
            ("OAUTH_GOOGLE_CLIENT_ID", "google-client"),
            ("OAUTH_GOOGLE_CLIENT_SECRET", "google-secret-value"),
        ],
    )
    .await;
    let res = app
        .client
        .get(app.url("/providers"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("body");
    assert!(!text.contains("google-secret-value") && !text.contains("google-client"));
    let body: Value = serde_json::from_str(&text).expect("json");
    let items = body["items"].as_array().expect("items");
    let find = |name: &str| {
        items
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .clone()
    };
    let google = find("google");
    assert_eq!(google["display_name"], "Google");
    assert_eq!(google["configured"], true);
    assert!(
        google["default_scopes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "openid"))
    );
    assert_eq!(find("microsoft")["configured"], false);
    assert_eq!(find("acme")["display_name"], "Acme ID");
    for name in [
        "github",
        "slack",
        "notion",
        "dropbox",
        "atlassian",
        "zoom",
        "hubspot",
        "salesforce",
        "linear",
    ] {
        find(name);
    }
    // Only the four public fields: no endpoint, no credential.
    let keys: Vec<&String> = google.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");

    // A provider the catalog knows can be a user's default calendar; others cannot.
    let id = app.insert_user("user_prov1").await;
    let token = app.user_token("user_prov1", false);
    let url = app.url(&format!("/users/{id}/preferences"));
    for (name, status) in [("acme", 200), ("microsoft", 200), ("myspace", 422)] {
        let res = app
            .client
            .patch(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({"integrations": {"default_calendar_provider": name}}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), status, "{name}");
    }

    // The default app (no file, no credentials): the built-in catalog, none configured.
    let plain = spawn_app(backend).await;
    let body: Value = plain
        .client
        .get(plain.url("/providers"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let items = body["items"].as_array().expect("items");
    assert!(items.len() >= 11);
    assert!(items.iter().all(|p| p["configured"] == false));
}
