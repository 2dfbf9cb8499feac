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
    archive_moves_old_prefix_and_chain_still_verifies,
    listing_pages_and_stats_group,
    concurrent_writers_keep_one_chain,
    modification_is_detected,
    deletion_is_detected,
    reordering_is_detected,
    tail_deletion_is_detected,
    personal_fields_are_chained_and_pseudonymizable
);

// Issue 14: quiet pseudonymization, a missing start, purge and archive done right.
#[path = "audit_chain/tamper.rs"]
mod tamper;

async fn write(app: &app::App, n: usize) {
    for i in 0..n {
        let txn = app.test_db().writer().begin().await.expect("begin");
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
    .exec(app.test_db().writer())
    .await
    .expect("tamper");
    assert_broken_at(&app, 3).await;
}

async fn deletion_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    audit_log::Entity::delete_by_id(2)
        .exec(app.test_db().writer())
        .await
        .expect("delete");
    assert_broken_at(&app, 3).await;
}

async fn reordering_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    // Swap the contents of entries 2 and 3 (ids stay, so only the hashes can tell).
    let w = app.test_db().writer();
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
        .exec(app.test_db().writer())
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
                    .await
                    .expect("committed");
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    // No flush: `record` returns only once its entry has committed (group commit).
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("chain verifies");
    assert_eq!(report.entries, 2003, "none lost");
    let stored = store::audit::list(
        app.test_db().reader(),
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

async fn archive_moves_old_prefix_and_chain_still_verifies(backend: Backend) {
    let (app, db) = app(backend, KEY1).await;
    write(&app, 6).await;
    backdate_through(&app, 4).await;
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("re-hashed chain verifies");

    let dir = db.dir().join("archive");
    let report = app
        .archive_audit(chrono::Utc::now() - chrono::Duration::days(365), &dir)
        .await
        .expect("archive");
    assert_eq!(
        (report.entries, report.first_id, report.last_id),
        (4, Some(1), Some(4))
    );
    let file = report.file.expect("file written");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&file).expect("open")),
        &mut text,
    )
    .expect("gunzip");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[3]["hash"],
        report.last_hash.clone().expect("hash").as_str()
    );

    let after = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("remaining chain verifies");
    assert_eq!(
        (after.entries, after.first_id, after.anchored_at_archive),
        (2, Some(5), true)
    );
    let remaining = store::audit::after(app.test_db().reader(), 0, 10)
        .await
        .expect("rows");
    assert_eq!(
        remaining[0].prev_hash,
        report.last_hash.expect("hash"),
        "anchored at the archive boundary"
    );
    assert_eq!(
        store::audit::archive_anchor(app.test_db().reader())
            .await
            .expect("anchor"),
        (4, remaining[0].prev_hash.clone()),
        "the anchor is stored with the delete"
    );
    // Nothing old enough: a second run archives nothing.
    let again = app
        .archive_audit(chrono::Utc::now() - chrono::Duration::days(365), &dir)
        .await
        .expect("archive");
    assert_eq!(again.entries, 0);
}

/// Makes entries 1..=`through` 400 days old. The chain hashes `occurred_at`, so every entry
/// is re-hashed the way the writer would have (archiving must not depend on how they got
/// old), and the head follows.
pub(crate) async fn backdate_through(app: &app::App, through: i64) {
    let w = app.test_db().writer();
    let old = chrono::Utc::now() - chrono::Duration::days(400);
    let (last, _) = store::audit::head(w).await.expect("head");
    let mut prev = "0".repeat(64);
    for id in 1..=last {
        let mut e = audit_log::Entity::find_by_id(id)
            .one(w)
            .await
            .expect("q")
            .expect("row");
        if id <= through {
            e.occurred_at = old;
        }
        let hash = app::audit::stored_hash(&e.clone().into(), &prev);
        audit_log::Entity::update(audit_log::ActiveModel {
            id: Set(id),
            occurred_at: Set(e.occurred_at),
            prev_hash: Set(prev.clone()),
            hash: Set(hash.clone()),
            ..Default::default()
        })
        .exec(w)
        .await
        .expect("rehash");
        prev = hash;
    }
    store::entities::audit_chain_head::Entity::update(
        store::entities::audit_chain_head::ActiveModel {
            id: Set(1),
            last_id: Set(last),
            last_hash: Set(prev),
        },
    )
    .exec(w)
    .await
    .expect("head");
}

async fn listing_pages_and_stats_group(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 7).await;
    let txn = app.test_db().writer().begin().await.expect("begin");
    app::audit::record(
        &txn,
        &app::Ctx::system("test"),
        app::audit::AuditRecord::new(AuditAction::UserDeleted, None),
    )
    .await
    .expect("record");
    txn.commit().await.expect("commit");

    // An admin session reads the log (its user row is written without an audit entry).
    let reader = common::session(&app, "user_auditor", true, Default::default())
        .await
        .as_audit_reader(Default::default())
        .expect("an admin reads the log");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .list_audit(
                &reader,
                app::audit::query::AuditQuery {
                    limit: Some(3),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (1..=8).rev().collect::<Vec<_>>(),
        "newest first, every entry once"
    );
    let only = app
        .list_audit(
            &reader,
            app::audit::query::AuditQuery {
                action: Some("user.deleted".into()),
                ..Default::default()
            },
        )
        .await
        .expect("filtered");
    assert_eq!(only.items.len(), 1);
    let unknown = app
        .list_audit(
            &reader,
            app::audit::query::AuditQuery {
                action: Some("nope".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(unknown.is_err());
    // Refused as a field error on `action` (a 422), not for any other reason.
    match unknown {
        Err(app::AppError::Validation(v)) => assert_eq!(
            v,
            domain::ValidationErrors::single("action", "is not a known audit action")
        ),
        other => panic!("expected a validation error on action, got {other:?}"),
    }

    let by_action = app
        .audit_stats(&reader, app::audit::query::GroupBy::Action, None, None)
        .await
        .expect("stats");
    assert_eq!(
        by_action,
        vec![
            ("user.deleted".to_owned(), 1),
            ("user.updated".to_owned(), 7)
        ]
    );
    let by_day = app
        .audit_stats(&reader, app::audit::query::GroupBy::Day, None, None)
        .await
        .expect("stats");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(by_day, vec![(today, 8)]);
}

/// Personal fields enter the chain through their digest: changing them in an intact entry
/// is detected; pseudonymizing them (the purge) keeps the chain verifiable, and the rest of
/// a pseudonymized entry is still protected.
async fn personal_fields_are_chained_and_pseudonymizable(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 4).await;
    let w = app.test_db().writer();
    let original = audit_log::Entity::find_by_id(2)
        .one(w)
        .await
        .expect("q")
        .expect("entry");
    assert!(
        original.pii_digest.is_some(),
        "new entries carry the digest"
    );
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        details: Set(serde_json::json!({"i": 99})),
        ..Default::default()
    })
    .exec(w)
    .await
    .expect("tamper");
    assert_broken_at(&app, 2).await;
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        details: Set(original.details.clone()),
        ..Default::default()
    })
    .exec(w)
    .await
    .expect("undo");
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("intact again");

    let entry = audit_log::Entity::find_by_id(2)
        .one(w)
        .await
        .expect("q")
        .expect("entry");
    let changed = app::audit::pseudonymize::pseudonymize(
        w,
        &app::Ctx::system("test"),
        "subject",
        vec![(
            entry.into(),
            store::audit::Pseudonymized {
                actor_id: Some("purged:x".to_owned()),
                user_id: Some(domain::UserId::new()),
                resource_id: None,
                details: serde_json::json!({"pseudonymized": true}),
            },
        )],
        chrono::Utc::now(),
    )
    .await
    .expect("pseudonymize");
    assert_eq!(changed, 1);
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("still verifies");
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        action: Set("user.restored".into()),
        ..Default::default()
    })
    .exec(w)
    .await
    .expect("tamper");
    assert_broken_at(&app, 2).await;
}
