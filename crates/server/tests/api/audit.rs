//! Audit routes with real credentials: a user's change is audited with the right actor and
//! request id; `/audit` needs an admin or `audit:read`; a user reads their own entries.

use testkit::both_backends;

use crate::common::{Backend, assert_problem, spawn_app};

both_backends!(audit_routes_record_and_guard);

async fn audit_routes_record_and_guard(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.insert_user("user_ada").await;
    app.insert_user("user_bob").await;
    let ada_token = app.user_token("user_ada", false);
    let bob_token = app.user_token("user_bob", false);

    // A real change through the real auth stack.
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&ada_token)
        .json(&serde_json::json!({"first_name": "Ada"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let rid = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    // The owner reads their entries: exactly one, with the right actor and request id.
    let mine: serde_json::Value = app
        .client
        .get(app.url("/users/me/audit"))
        .bearer_auth(&ada_token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let items = mine["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{mine}");
    assert_eq!(items[0]["action"], "user.updated");
    assert_eq!(items[0]["actor_type"], "user");
    assert_eq!(items[0]["actor_id"], "user_ada");
    assert_eq!(items[0]["user_id"], ada.to_string());
    assert_eq!(items[0]["request_id"], rid.as_str());
    assert!(mine["next_cursor"].is_null());

    // Another user's entries, and the whole log, are not a user's to read.
    let res = app
        .client
        .get(app.url(&format!("/users/{ada}/audit")))
        .bearer_auth(&bob_token)
        .send()
        .await
        .expect("get");
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .client
        .get(app.url("/audit"))
        .bearer_auth(&ada_token)
        .send()
        .await
        .expect("get");
    assert_problem(res, 403, "forbidden").await;
    let res = app.client.get(app.url("/audit")).send().await.expect("get");
    assert_problem(res, 401, "unauthorized").await;

    // A service key needs audit:read; an admin user may read too.
    let wrong = app.service_key("mailer", &["tokens:read"]).await;
    let res = app
        .client
        .get(app.url("/audit"))
        .header("x-api-key", &wrong)
        .send()
        .await
        .expect("get");
    assert_problem(res, 403, "forbidden").await;
    let reader = app.service_key("siem", &["audit:read"]).await;
    let all: serde_json::Value = app
        .client
        .get(app.url("/audit?action=user.updated&limit=10"))
        .header("x-api-key", &reader)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(all["items"].as_array().expect("items").len(), 1, "{all}");
    app.insert_user("user_root").await;
    let admin = app.user_token("user_root", true);
    let stats: serde_json::Value = app
        .client
        .get(app.url("/audit/stats?group_by=action"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let keys: Vec<&str> = stats["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"user.updated") && keys.contains(&"service_key.created"),
        "{stats}"
    );
    let res = app
        .client
        .get(app.url("/audit/stats?group_by=week"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    let body = assert_problem(res, 422, "validation_error").await;
    assert_eq!(body["errors"][0]["field"], "group_by");
    let res = app
        .client
        .get(app.url("/audit?limit=abc"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_problem(res, 400, "invalid_request").await;
    // No key material in the log.
    let text = all.to_string() + &stats.to_string();
    assert!(!text.contains(&reader) && !text.contains(&wrong));
}
