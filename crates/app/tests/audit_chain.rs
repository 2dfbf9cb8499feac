//! The audit hash chain on both backends: concurrent writers cannot fork it; modifying,
//! deleting or reordering an entry is detected.

mod common;

use common::{KEY1, app};
use domain::{UserId, audit::AuditAction};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use store::{TransactionTrait, entities::audit_log};
use testkit::{Backend, both_backends};

both_backends!(
    batched_access_entries_all_land_and_chain,
    concurrent_writers_keep_one_chain,
    modification_is_detected,
    deletion_is_detected,
    reordering_is_detected,
    tail_deletion_is_detected
);

async fn write(app: &app::App, n: usize) {
    for i in 0..n {
        let txn = app.db().writer().begin().await.expect("begin");
        app::audit::record(
            &txn,
            &app::Ctx::system("test"),
            app::audit::AuditRecord::new(AuditAction::UserUpdated, Some(UserId::new()))
                .details(serde_json::json!({"i": i})),
        )
        .await
        .expect("record");
        txn.commit().await.expect("commit");
    }
}

async fn assert_broken_at(app: &app::App, id: i64) {
    let broken = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect_err("chain must be broken");
    assert_eq!(broken.id, id, "{}", broken.reason);
}

async fn concurrent_writers_keep_one_chain(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { write(&app, 5).await }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("chain verifies");
    assert_eq!(report.entries, 100);
    assert_eq!((report.first_id, report.last_id), (Some(1), Some(100)));
}

async fn modification_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(3),
        outcome: Set("failure".into()),
        ..Default::default()
    })
    .exec(app.db().writer())
    .await
    .expect("tamper");
    assert_broken_at(&app, 3).await;
}

async fn deletion_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    audit_log::Entity::delete_by_id(2)
        .exec(app.db().writer())
        .await
        .expect("delete");
    assert_broken_at(&app, 3).await;
}

async fn reordering_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    // Swap the contents of entries 2 and 3 (ids stay, so only the hashes can tell).
    let w = app.db().writer();
    let e2 = audit_log::Entity::find_by_id(2)
        .one(w)
        .await
        .expect("q")
        .expect("row");
    let e3 = audit_log::Entity::find_by_id(3)
        .one(w)
        .await
        .expect("q")
        .expect("row");
    for (id, src) in [(2, &e3), (3, &e2)] {
        audit_log::Entity::update(audit_log::ActiveModel {
            id: Set(id),
            details: Set(src.details.clone()),
            user_id: Set(src.user_id),
            prev_hash: Set(src.prev_hash.clone()),
            hash: Set(src.hash.clone()),
            ..Default::default()
        })
        .exec(w)
        .await
        .expect("swap");
    }
    assert_broken_at(&app, 2).await;
    let _ = w.execute_unprepared("SELECT 1").await;
}

async fn tail_deletion_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    audit_log::Entity::delete_by_id(5)
        .exec(app.db().writer())
        .await
        .expect("delete");
    assert_broken_at(&app, 5).await;
}

async fn batched_access_entries_all_land_and_chain(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    // Mixed with ordinary in-transaction writers, which share the same chain head.
    write(&app, 3).await;
    let mut tasks = Vec::new();
    for t in 0..50 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let rec = app::audit::AuditRecord::new(
                    AuditAction::TokenAccessed,
                    Some(UserId::new()),
                )
                .resource("integration", "google")
                .details(
                    serde_json::json!({"task": t, "i": i, "access_token": "ya29.must-not-land"}),
                );
                app.access_log()
                    .record(&app::Ctx::system("test"), rec)
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    app.access_log().flush().await;
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("chain verifies");
    assert_eq!(report.entries, 2003, "none lost");
    let stored = store::audit::list(
        app.db().reader(),
        &store::audit::AuditFilter {
            action: Some("token.accessed".into()),
            ..Default::default()
        },
        5000,
    )
    .await
    .expect("list");
    assert_eq!(stored.len(), 2000);
    assert!(
        stored
            .iter()
            .all(|e| !e.details.to_string().contains("must-not-land")),
        "details scrubbed"
    );
}
