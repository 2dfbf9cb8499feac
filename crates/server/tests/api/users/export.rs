//! `GET /users/{ref}/export`: everything stored about the owner, no secrets, nobody else's
//! data, not for another user.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, both_backends, fixtures};

use super::users_app;
use crate::common::assert_problem;

both_backends!(users_export_contains_everything);

async fn users_export_contains_everything(backend: Backend) {
    let h = users_app(backend, &[]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    h.insert("user_bob", "bob@example.com", "Bob", "B").await;
    fixtures::integration(a, "google")
        .insert_with_credentials(h.app.state.app().test_db().writer())
        .await;
    h.req(Method::PATCH, "/users/me", &h.alice)
        .json(&json!({"first_name": "Ada"}))
        .send()
        .await
        .expect("send");
    let res = h
        .req(Method::GET, "/users/me/export", &h.alice)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["user"]["id"], a.to_string());
    assert_eq!(doc["user"]["first_name"], "Ada");
    assert_eq!(
        doc["preferences"],
        Value::Null,
        "defaults: no overrides stored"
    );
    assert_eq!(doc["preference_history"], json!([]));
    let integ = doc["integrations"].as_array().expect("integrations");
    assert_eq!(integ.len(), 1);
    assert_eq!(integ[0]["provider"], "google");
    let audit = doc["audit"].as_array().expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "user.updated");
    let text = doc.to_string();
    assert!(
        !text.contains("ciphertext") && !text.contains("pkce"),
        "no secrets: {text}"
    );
    assert!(!text.contains("bob@example.com"), "only Alice's data");
    let res = h
        .req(Method::GET, "/users/user_alice/export", &h.bob)
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
}
