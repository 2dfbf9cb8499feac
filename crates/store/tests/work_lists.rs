//! The health check's work list puts never-checked integrations first, then the longest
//! unchecked, on both engines (Postgres sorts NULLs last unless told otherwise), and a
//! batch limit cuts it at the same place everywhere.

use chrono::{Duration, Utc};
use sea_orm::EntityTrait;
use store::{
    Db, DbOptions,
    entities::{integrations, users},
    token_refresh,
};
use testkit::{Backend, TestDb, both_backends, fixtures};
use uuid::Uuid;

both_backends!(never_checked_integrations_come_first);

async fn never_checked_integrations_come_first(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let w = db.writer();
    let now = Utc::now();
    // Inserted oldest-checked first, so insertion order would not pass for the answer.
    let checked = [
        ("checked_2h", Some(now - Duration::hours(2))),
        ("checked_1h", Some(now - Duration::hours(1))),
        ("never_a", None),
        ("checked_recently", Some(now - Duration::minutes(1))),
        ("never_b", None),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, last_checked) in checked {
        let user = Uuid::now_v7();
        users::Entity::insert(user_row(user, name, now))
            .exec(w)
            .await
            .expect("user");
        integrations::Entity::insert(integration(user, last_checked, now))
            .exec(w)
            .await
            .expect("integration");
        ids.insert(user, name);
    }
    let names = |list: Vec<token_refresh::Due>| -> Vec<&str> {
        list.iter().map(|d| ids[&d.user.as_uuid()]).collect()
    };
    let due = token_refresh::unchecked_since(db.reader(), now - Duration::minutes(15), 100)
        .await
        .expect("work list");
    let due = names(due);
    assert_eq!(due.len(), 4, "{due:?}");
    let (never, checked) = due.split_at(2);
    let mut never = never.to_vec();
    never.sort_unstable();
    assert_eq!(
        never,
        ["never_a", "never_b"],
        "never checked first: {due:?}"
    );
    assert_eq!(
        checked,
        ["checked_2h", "checked_1h"],
        "then the oldest: {due:?}"
    );
    // A batch of two is exactly the two never checked.
    let batch = token_refresh::unchecked_since(db.reader(), now - Duration::minutes(15), 2)
        .await
        .expect("work list");
    let mut batch = names(batch);
    batch.sort_unstable();
    assert_eq!(batch, ["never_a", "never_b"]);
    db.close().await;
}

fn user_row(id: Uuid, name: &str, now: chrono::DateTime<Utc>) -> users::ActiveModel {
    fixtures::user(&format!("user_{name}")).id(id).at(now).row()
}

fn integration(
    user_id: Uuid,
    last_checked_at: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> integrations::ActiveModel {
    fixtures::integration(user_id, "google")
        .scopes(&["openid"])
        .at(now)
        .last_checked_at(last_checked_at)
        .row()
}
