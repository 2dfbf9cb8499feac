//! Soft delete and restore: the owner deletes, only an admin restores, within the retention
//! window; deleting disconnects every integration and drops its credentials.

use chrono::Duration;
use reqwest::Method;
use serde_json::Value;
use testkit::store::users::{self, Deleted};
use testkit::{Backend, both_backends, fixtures};

use super::{by, users_app};
use crate::common::assert_problem;

both_backends!(users_soft_delete_restore_and_retention);

async fn users_soft_delete_restore_and_retention(backend: Backend) {
    let h = users_app(backend, &[("USER_RETENTION_DAYS", "7")]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    fixtures::integration(a, "google")
        .insert_with_credentials(h.app.state.app().test_db().writer())
        .await;
    let res = h
        .req(Method::DELETE, "/users/me", &h.alice)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    // Through real authentication a deleted user's session is refused outright (the old
    // injected-principal harness skipped that check and saw the handler's 404).
    let res = h
        .req(Method::GET, "/users/me", &h.alice)
        .send()
        .await
        .expect("send");
    let p = assert_problem(res, 403, "forbidden").await;
    assert_eq!(p["detail"], "the account of this session has been deleted");
    let res = h
        .req(Method::GET, "/users/user_alice", &h.admin)
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "not_found").await;
    let res = h
        .req(
            Method::GET,
            "/users/user_alice?include_deleted=true",
            &h.admin,
        )
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert!(u["deleted_at"].is_string(), "{u}");
    assert_eq!(
        h.app.credentials_of(a).await,
        (0, 0, vec!["disconnected".to_owned()])
    );
    // Not for the user themself; the admin restores.
    let restore = |token: &str| h.req(Method::POST, "/users/user_alice/restore", token);
    let res = restore(&h.alice).send().await.expect("send");
    assert_problem(res, 403, "forbidden").await;
    let res = restore(&h.admin).send().await.expect("send");
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["deleted_at"], Value::Null);
    let res = h
        .req(Method::GET, "/users/me", &h.alice)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let res = restore(&h.admin).send().await.expect("send");
    assert_problem(res, 409, "conflict").await;
    // Deleted 8 days ago with a 7-day window: too late.
    let res = h
        .req(Method::DELETE, &format!("/users/{a}"), &h.admin)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let db = h.app.state.app().test_db().writer();
    let mut stored = users::find_by_id(db, domain::UserId::from_uuid(a), Deleted::Include)
        .await
        .expect("q")
        .expect("user");
    stored.deleted_at = Some(fixtures::now() - Duration::days(8));
    users::update(db, stored).await.expect("backdate");
    let res = restore(&h.admin).send().await.expect("send");
    assert_problem(res, 409, "conflict").await;
    assert_eq!(
        h.audit(a).await,
        vec![
            by("user.deleted", "user_alice"),
            by("user.restored", "user_root"),
            by("user.deleted", "user_root"),
        ]
    );
}
