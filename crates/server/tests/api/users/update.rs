//! PUT and PATCH of a user: validation, read-only fields, partial updates, one audit entry
//! per change with its actor.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, both_backends};
use uuid::Uuid;

use super::{by, users_app};
use crate::common::assert_problem;

both_backends!(users_update_validates_and_refuses_read_only_fields);

async fn users_update_validates_and_refuses_read_only_fields(backend: Backend) {
    let h = users_app(backend, &[]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    for (body, field) in [
        (json!({"email": "x@example.com"}), "email"),
        (json!({"id": Uuid::now_v7()}), "id"),
        (json!({"clerk_user_id": "user_x"}), "clerk_user_id"),
        (json!({"first_name": "Al", "nickname": "x"}), "nickname"),
    ] {
        let res = h
            .req(Method::PATCH, "/users/me", &h.alice)
            .json(&body)
            .send()
            .await
            .expect("send");
        let p = assert_problem(res, 422, "validation_error").await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let bad = json!({
        "first_name": "  ",
        "last_name": "x".repeat(101),
        "profile_image_url": "http://insecure.example.com/a.png",
        "onboarding_step": "Step One",
    });
    let res = h
        .req(Method::PUT, "/users/me", &h.alice)
        .json(&bad)
        .send()
        .await
        .expect("send");
    let p = assert_problem(res, 422, "validation_error").await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "first_name",
            "last_name",
            "profile_image_url",
            "onboarding_step"
        ]
    );
    assert!(
        h.audit(a).await.is_empty(),
        "invalid updates change nothing"
    );

    let res = h
        .req(Method::PATCH, "/users/me", &h.alice)
        .json(
            &json!({"first_name": "  Ada ", "profile_image_url": "https://img.example.com/a.png",
                      "onboarding_step": "connect_google", "onboarding_completed": true}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["first_name"], "Ada");
    assert_eq!(u["last_name"], "A", "untouched");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["onboarding_completed"], true);
    assert!(u["onboarding_completed_at"].is_string(), "{u}");
    // PUT is partial too; null clears a field.
    let res = h
        .req(Method::PUT, &format!("/users/{a}"), &h.alice)
        .json(&json!({"last_name": null}))
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["last_name"], Value::Null);
    assert_eq!(u["first_name"], "Ada");
    // The admin edits Alice: one entry per change, each with its actor.
    let res = h
        .req(Method::PATCH, "/users/user_alice", &h.admin)
        .json(&json!({"onboarding_completed": false}))
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["onboarding_completed_at"], Value::Null);
    assert_eq!(
        h.audit(a).await,
        vec![
            by("user.updated", "user_alice"),
            by("user.updated", "user_alice"),
            by("user.updated", "user_root")
        ]
    );
}
