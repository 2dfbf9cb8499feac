//! Who may call which users route: owners on themselves by every kind of reference, admins
//! (by role or by an `admin` service key) on anyone, nobody else.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Backend, both_backends};
use uuid::Uuid;

use super::users_app;
use crate::common::assert_problem;

both_backends!(users_access_matrix);

async fn users_access_matrix(backend: Backend) {
    let h = users_app(backend, &[]).await;
    h.insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    let bob = h.insert("user_bob", "bob@example.com", "Bob", "B").await;
    let body = json!({"first_name": "Mallory"});
    // Alice on every route of Bob's, by id and by Clerk id, and on ids that do not exist.
    for r in [
        bob.to_string(),
        "user_bob".to_owned(),
        Uuid::now_v7().to_string(),
        "user_nobody".to_owned(),
    ] {
        for (m, path) in [
            (Method::GET, format!("/users/{r}")),
            (Method::PUT, format!("/users/{r}")),
            (Method::PATCH, format!("/users/{r}")),
            (Method::DELETE, format!("/users/{r}")),
            (Method::POST, format!("/users/{r}/restore")),
            (Method::GET, format!("/users/{r}/export")),
        ] {
            let res = h
                .req(m.clone(), &path, &h.alice)
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_problem(res, 403, "forbidden").await;
        }
    }
    let res = h
        .req(Method::GET, "/users", &h.alice)
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
    // A service key without admin is refused; with admin it acts as admin.
    let billing = h.app.service_key("billing", &["users:read"]).await;
    let ops = h.app.service_key("ops", &["admin"]).await;
    let by_key = |key: &str| {
        h.app
            .client
            .get(h.app.url("/users/user_bob"))
            .header("x-api-key", key)
    };
    let res = by_key(&billing).send().await.expect("send");
    assert_problem(res, 403, "forbidden").await;
    let res = by_key(&ops).send().await.expect("send");
    assert_eq!(res.status(), 200);
    // Without credentials: 401.
    let res = h
        .app
        .client
        .get(h.app.url("/users/me"))
        .send()
        .await
        .expect("send");
    assert_problem(res, 401, "unauthorized").await;
    // Bob on himself by every kind of ref, the admin on Bob.
    for (who, r) in [
        (&h.bob, "me".to_owned()),
        (&h.bob, "user_bob".to_owned()),
        (&h.bob, bob.to_string()),
        (&h.admin, bob.to_string()),
    ] {
        let res = h
            .req(Method::GET, &format!("/users/{r}"), who)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200, "{r}");
        let u: Value = res.json().await.expect("json");
        assert_eq!(u["id"], bob.to_string());
    }
    // The resource has exactly the fields of API.md.
    let u: Value = h
        .req(Method::GET, "/users/me", &h.bob)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let mut keys: Vec<_> = u.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "clerk_user_id",
            "created_at",
            "deleted_at",
            "email",
            "first_name",
            "id",
            "last_name",
            "last_sign_in_at",
            "onboarding_completed",
            "onboarding_completed_at",
            "onboarding_step",
            "profile_image_url",
            "updated_at"
        ]
    );
    // An unknown user is 404 for an admin.
    let res = h
        .req(Method::GET, "/users/user_nobody", &h.admin)
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "not_found").await;
    assert!(
        h.audit(bob).await.is_empty(),
        "refused requests change nothing"
    );
}
