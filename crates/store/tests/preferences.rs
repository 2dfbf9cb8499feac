//! Preferences storage on both backends: the conditional write (exactly one of two writers
//! with the same expected version wins, the loser writes nothing), history paging and
//! snapshots, and the schema upgrade batch.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::json;
use store::{
    Db, DbOptions, TransactionTrait,
    entities::{preference_history, preference_overrides},
    preferences::{self, NewVersion, WriteOutcome},
};
use testkit::{Backend, TestDb, fixtures};
use uuid::Uuid;

async fn open(backend: Backend) -> (TestDb, Db) {
    let t = TestDb::new(backend).await;
    let db = Db::connect(t.url(), None, &DbOptions::default())
        .await
        .expect("must succeed");
    db.migrate().await.expect("must succeed");
    (t, db)
}

async fn user(db: &Db) -> Uuid {
    let id = Uuid::now_v7();
    fixtures::user(&format!("user_{}", id.simple()))
        .id(id)
        .insert(db.writer())
        .await
}

fn version(user_id: Uuid, expected: i64, theme: &str) -> NewVersion {
    NewVersion {
        user_id,
        expected_version: expected,
        overrides: json!({"ui": {"theme": theme}}),
        changes: json!({"ui": {"theme": theme}}),
        changed_by: format!("user:{theme}"),
        at: Utc::now(),
    }
}

/// Each writer in its own transaction, concurrently.
async fn race(db: &Db, a: NewVersion, b: NewVersion) -> (WriteOutcome, WriteOutcome) {
    let write = |nv: NewVersion| {
        let db = db.clone();
        async move {
            let txn = db.writer().begin().await.expect("must succeed");
            let out = preferences::write_version(&txn, nv)
                .await
                .expect("must succeed");
            txn.commit().await.expect("must succeed");
            out
        }
    };
    tokio::join!(write(a), write(b))
}

async fn exactly_one_of_two_writers_wins(backend: Backend) {
    let (_t, db) = open(backend).await;
    let u = user(&db).await;
    // First write (no row yet: both insert).
    let (a, b) = race(&db, version(u, 0, "dark"), version(u, 0, "light")).await;
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| matches!(o, WriteOutcome::Stale));
    assert_eq!(
        outcomes,
        [WriteOutcome::Written { version: 1 }, WriteOutcome::Stale]
    );
    // Next write (both update from version 1).
    let (a, b) = race(&db, version(u, 1, "dark"), version(u, 1, "light")).await;
    let winner = if a == WriteOutcome::Stale {
        "light"
    } else {
        "dark"
    };
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| matches!(o, WriteOutcome::Stale));
    assert_eq!(
        outcomes,
        [WriteOutcome::Written { version: 2 }, WriteOutcome::Stale]
    );

    // The loser wrote nothing: one history row per version, the row holds the winner.
    let row = preferences::get(db.writer(), u)
        .await
        .expect("must succeed")
        .expect("must succeed");
    assert_eq!(row.version, 2);
    assert_eq!(row.overrides, json!({"ui": {"theme": winner}}));
    assert_eq!(
        preference_history::Entity::find()
            .count(db.writer())
            .await
            .expect("must succeed"),
        2
    );
    let v2 = preferences::history_version(db.writer(), u, 2)
        .await
        .expect("must succeed")
        .expect("must succeed");
    assert_eq!(v2.changed_by, format!("user:{winner}"));

    // A stale expected version, sequentially, is refused too.
    let txn = db.writer().begin().await.expect("must succeed");
    let out = preferences::write_version(&txn, version(u, 1, "system"))
        .await
        .expect("must succeed");
    txn.commit().await.expect("must succeed");
    assert_eq!(out, WriteOutcome::Stale);
    assert_eq!(
        preferences::get(db.writer(), u)
            .await
            .expect("must succeed")
            .expect("must succeed")
            .version,
        2
    );
}

async fn history_pages_newest_first(backend: Backend) {
    let (_t, db) = open(backend).await;
    let u = user(&db).await;
    let other = user(&db).await;
    for v in 0..5 {
        let txn = db.writer().begin().await.expect("must succeed");
        let out = preferences::write_version(
            &txn,
            version(u, v, if v % 2 == 0 { "dark" } else { "light" }),
        )
        .await
        .expect("must succeed");
        assert_eq!(out, WriteOutcome::Written { version: v + 1 });
        txn.commit().await.expect("must succeed");
    }
    let txn = db.writer().begin().await.expect("must succeed");
    preferences::write_version(&txn, version(other, 0, "dark"))
        .await
        .expect("must succeed");
    txn.commit().await.expect("must succeed");

    let page = preferences::history(db.reader(), u, None, 2)
        .await
        .expect("must succeed");
    assert_eq!(page.iter().map(|h| h.version).collect::<Vec<_>>(), [5, 4]);
    let page = preferences::history(db.reader(), u, Some(4), 10)
        .await
        .expect("must succeed");
    assert_eq!(
        page.iter().map(|h| h.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(page[2].snapshot, json!({"ui": {"theme": "dark"}}));
    assert!(
        preferences::history_version(db.reader(), u, 9)
            .await
            .expect("must succeed")
            .is_none()
    );
    assert!(
        preferences::history_version(db.reader(), other, 2)
            .await
            .expect("must succeed")
            .is_none()
    );
}

async fn upgrade_batch_migrates_old_rows(backend: Backend) {
    let (_t, db) = open(backend).await;
    let old = user(&db).await;
    let broken = user(&db).await;
    let current = user(&db).await;
    let now = Utc::now();
    for (u, schema, doc) in [
        (
            old,
            0,
            json!({"ui": {"dark_mode": true}, "notifications": {"digest": "off"}}),
        ),
        (broken, 0, json!({"ui": {"dark_mode": "maybe"}})),
        (current, 1, json!({"ui": {"theme": "light"}})),
    ] {
        preference_overrides::ActiveModel {
            user_id: Set(u),
            schema_version: Set(schema),
            version: Set(3),
            overrides: Set(doc),
            updated_at: Set(now),
        }
        .insert(db.writer())
        .await
        .expect("must succeed");
    }
    assert_eq!(
        preferences::upgrade_batch(db.writer(), 10)
            .await
            .expect("must succeed"),
        1
    );
    let row = preferences::get(db.writer(), old)
        .await
        .expect("must succeed")
        .expect("must succeed");
    assert_eq!(row.schema_version, 1);
    assert_eq!(row.version, 3, "an upgrade keeps the user's version");
    assert_eq!(
        row.overrides,
        json!({"ui": {"theme": "dark"}, "notifications": {"digest_frequency": "never"}})
    );
    let b = preferences::get(db.writer(), broken)
        .await
        .expect("must succeed")
        .expect("must succeed");
    assert_eq!(
        b.schema_version, 0,
        "a row that cannot migrate is left alone"
    );
    assert_eq!(
        preferences::upgrade_batch(db.writer(), 10)
            .await
            .expect("must succeed"),
        0
    );
}

testkit::both_backends!(
    exactly_one_of_two_writers_wins,
    history_pages_newest_first,
    upgrade_batch_migrates_old_rows
);
