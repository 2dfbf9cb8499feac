//! Who is a principal (docs/security.md): a session speaks for a live user only, so an
//! admin whose account is soft-deleted loses every power at once, and an unknown `sub` is
//! nobody. And what an owner sees of their audit: other actors' names, not their IP
//! addresses or user agents (admins see everything).

use serde_json::{Value, json};
use testkit::{Backend, both_backends};

use crate::common::{assert_problem, spawn_app};

both_backends!(
    authority_ends_with_the_account,
    owners_do_not_see_other_actors_addresses
);

async fn authority_ends_with_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin_id = app.insert_user("user_root").await;
    let target = app.insert_user("user_target").await;
    let admin = app.user_token("user_root", true);
    let get = |path: String, token: String| {
        let req = app.client.get(app.url(&path)).bearer_auth(token);
        async move { req.send().await.expect("request") }
    };
    assert_eq!(get("/users".into(), admin.clone()).await.status(), 200);
    assert_eq!(
        get(format!("/users/{target}"), admin.clone())
            .await
            .status(),
        200
    );

    // The admin's own account is soft-deleted: the same, still valid, token is powerless.
    app.state
        .app()
        .delete_user(&app.owner("user_root").await)
        .await
        .expect("deleted");
    for path in [
        "/users".to_owned(),
        format!("/users/{target}"),
        "/users/me".into(),
        "/admin/jobs".into(),
    ] {
        let res = get(path.clone(), admin.clone()).await;
        let body = assert_problem(res, 403, "forbidden").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("deleted"),
            "{path}: {body}"
        );
    }
    // Nothing was written by the refused admin.
    let res = app
        .client
        .delete(app.url(&format!("/users/{target}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;
    assert!(
        app.state
            .app()
            .find_user(
                &app::users::UserKey::Id(domain::UserId::from_uuid(target)),
                testkit::store::users::Deleted::Exclude
            )
            .await
            .expect("lookup")
            .is_some()
    );

    // Restored (by another admin's action), the account acts again: checked per request.
    app.state
        .app()
        .restore_user(
            &app.admin_key_holder().await,
            domain::UserId::from_uuid(admin_id),
            30,
        )
        .await
        .expect("restored");
    assert_eq!(get("/users".into(), admin.clone()).await.status(), 200);

    // A validly signed session for a user this service does not know (and Clerk, when
    // asked, knows none) holds no admin power, and its own user is 404 (API.md).
    let stranger = app.user_token("user_nobody", true);
    assert_problem(
        get("/users".into(), stranger.clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        get("/users/me".into(), stranger.clone()).await,
        404,
        "not_found",
    )
    .await;
    // Public routes stay public for them.
    assert_eq!(get("/providers".into(), stranger).await.status(), 200);
}

fn entries_by(items: &[Value], actor: &str) -> Vec<Value> {
    items
        .iter()
        .filter(|e| e["actor_id"] == actor)
        .cloned()
        .collect()
}

async fn owners_do_not_see_other_actors_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.insert_user("user_ada").await;
    app.insert_user("user_support").await;
    let ada_token = app.user_token("user_ada", false);
    let admin = app.user_token("user_support", true);
    let patch = |token: &str, agent: &str, name: &str| {
        app.client
            .patch(app.url(&format!("/users/{ada}")))
            .bearer_auth(token)
            .header("user-agent", agent)
            .json(&json!({"first_name": name}))
            .send()
    };
    assert_eq!(
        patch(&ada_token, "ada-browser/1.0", "Ada")
            .await
            .expect("own")
            .status(),
        200
    );
    assert_eq!(
        patch(&admin, "support-console/2.0", "Augusta")
            .await
            .expect("admin")
            .status(),
        200
    );

    let audit = |token: String| {
        let req = app
            .client
            .get(app.url("/users/me/audit"))
            .bearer_auth(token);
        async move {
            req.send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let own_view = audit(ada_token.clone()).await;
    let items = own_view["items"].as_array().expect("items");
    let theirs = entries_by(items, "user_support");
    assert_eq!(theirs.len(), 1, "{own_view}");
    assert_eq!(theirs[0]["actor_type"], "user", "the actor's name stays");
    assert!(
        theirs[0]["ip"].is_null() && theirs[0]["user_agent"].is_null(),
        "{own_view}"
    );
    let mine = entries_by(items, "user_ada");
    assert_eq!(
        mine[0]["user_agent"], "ada-browser/1.0",
        "their own stays: {own_view}"
    );
    assert_eq!(mine[0]["ip"], "127.0.0.1");

    // The export says the same.
    let export: Value = app
        .client
        .get(app.url("/users/me/export"))
        .bearer_auth(&ada_token)
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("json");
    let items = export["audit"].as_array().expect("audit");
    let theirs = entries_by(items, "user_support");
    assert!(
        theirs[0]["ip"].is_null() && theirs[0]["user_agent"].is_null(),
        "{export}"
    );
    assert_eq!(
        entries_by(items, "user_ada")[0]["user_agent"],
        "ada-browser/1.0"
    );

    // An admin sees everything.
    let full: Value = app
        .client
        .get(app.url(&format!("/users/{ada}/audit")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let theirs = entries_by(full["items"].as_array().expect("items"), "user_support");
    assert_eq!(theirs[0]["user_agent"], "support-console/2.0", "{full}");
    assert_eq!(theirs[0]["ip"], "127.0.0.1");
    let export: Value = app
        .client
        .get(app.url(&format!("/users/{ada}/export")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("json");
    let theirs = entries_by(export["audit"].as_array().expect("audit"), "user_support");
    assert_eq!(theirs[0]["user_agent"], "support-console/2.0");
}
