//! Preferences over HTTP: the public schema route. (The per-user routes come with the
//! `OwnedUser` extractor; their behaviour is tested at the use-case level in crates/app.)

use testkit::both_backends;

use crate::common::{Backend, spawn_app};

both_backends!(schema_and_defaults_are_public);

async fn schema_and_defaults_are_public(backend: Backend) {
    let app = spawn_app(backend).await;
    // No credentials: the route is public.
    let res = app
        .client
        .get(app.url("/preferences/schema"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    let schema = &body["schema"];
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["$defs"]["Theme"]["enum"],
        serde_json::json!(["light", "dark", "system"])
    );
    assert!(!schema.to_string().contains("#/components/"));
    assert_eq!(body["defaults"]["ui"]["theme"], "system");
    assert_eq!(
        body["defaults"]["integrations"]["sync_frequency_minutes"],
        15
    );
    assert!(body["defaults"]["ai"]["preferred_model"].is_null());

    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(doc["paths"]["/preferences/schema"]["get"].is_object());
}
