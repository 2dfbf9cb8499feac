//! The two edits `audit verify` used to let through (issue 14): rewriting an entry's
//! personal fields while marking it pseudonymized, and deleting the oldest entries. And the
//! legitimate versions of both — a purge, an archive, a database archived before the
//! anchor existed — which must keep verifying.

use chrono::Utc;
use domain::audit::AuditAction;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sea_orm_migration::MigratorTrait;
use store::{TransactionTrait, entities::audit_log, migration::Migrator};
use testkit::{Backend, TestDb, both_backends};

use super::{assert_broken_at, backdate_through, common, write};
use common::{KEY1, app};

both_backends!(
    quiet_pseudonymization_is_detected,
    editing_a_pseudonymized_entry_is_detected,
    deleting_the_oldest_entries_is_detected,
    deleting_after_an_archive_is_detected,
    archiving_everything_still_verifies,
    archive_refuses_a_broken_chain,
    purge_records_its_pseudonymizations_and_verifies,
    migration_anchors_a_database_archived_before
);

/// (a) An attacker with write access rewrites entry 2's actor, user, IP and details and
/// sets `pseudonymized_at`, which used to make verify skip the entry's digest.
async fn quiet_pseudonymization_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 4).await;
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        actor_id: Set(Some("someone-else".into())),
        user_id: Set(Some(uuid::Uuid::new_v4())),
        ip: Set(Some("10.9.9.9".into())),
        details: Set(serde_json::json!({"pseudonymized": true})),
        pseudonymized_at: Set(Some(Utc::now())),
        ..Default::default()
    })
    .exec(app.test_db().writer())
    .await
    .expect("tamper");
    let broken = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect_err("must not verify");
    assert_eq!(broken.id, 2, "{}", broken.reason);
    assert!(
        broken.reason.contains("no pseudonymization record"),
        "{}",
        broken.reason
    );
}

/// A legitimately pseudonymized entry can't be edited afterwards either: its record names
/// the digest of the replacement fields.
async fn editing_a_pseudonymized_entry_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 4).await;
    let w = app.test_db().writer();
    let entry = audit_log::Entity::find_by_id(3)
        .one(w)
        .await
        .expect("q")
        .expect("entry");
    let p = store::audit::Pseudonymized {
        actor_id: Some("purged:p".into()),
        user_id: Some(domain::UserId::new()),
        resource_id: None,
        details: serde_json::json!({"pseudonymized": true}),
    };
    app::audit::pseudonymize::pseudonymize(
        w,
        &app::Ctx::system("test"),
        "p",
        vec![(entry.into(), p)],
        Utc::now(),
    )
    .await
    .expect("pseudonymize");
    let record = audit_log::Entity::find_by_id(5)
        .one(w)
        .await
        .expect("q")
        .expect("record");
    assert_eq!(record.action, "audit.pseudonymized");
    let named = &record.details["entries"][0];
    assert_eq!(named["id"], 3);
    assert_eq!(
        named["fields"],
        serde_json::json!(["actor_id", "user_id", "details"])
    );
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("a recorded pseudonymization verifies");

    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(3),
        actor_id: Set(Some("purged:someone-else".into())),
        ..Default::default()
    })
    .exec(w)
    .await
    .expect("tamper");
    let broken = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect_err("must not verify");
    assert_eq!(broken.id, 3, "{}", broken.reason);
    assert!(broken.reason.contains("entry 5"), "{}", broken.reason);
}

/// (b) Deleting the oldest entries used to leave a chain that verified from its new first
/// entry. Nothing was archived, so the chain must start at genesis.
async fn deleting_the_oldest_entries_is_detected(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    write(&app, 5).await;
    audit_log::Entity::delete_many()
        .filter(audit_log::Column::Id.lte(2))
        .exec(app.test_db().writer())
        .await
        .expect("delete");
    let broken = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect_err("must not verify");
    assert_eq!(broken.id, 3, "{}", broken.reason);
    assert!(
        broken.reason.contains("entries 1–2 are missing"),
        "{}",
        broken.reason
    );
}

/// After a real archive the chain starts at the stored anchor: deleting the next entry is
/// a gap too.
async fn deleting_after_an_archive_is_detected(backend: Backend) {
    let (app, db) = app(backend, KEY1).await;
    write(&app, 6).await;
    backdate_through(&app, 3).await;
    let report = app
        .archive_audit(
            Utc::now() - chrono::Duration::days(365),
            &db.dir().join("a"),
        )
        .await
        .expect("archive");
    assert_eq!(report.last_id, Some(3));
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("a legitimate archive verifies");
    audit_log::Entity::delete_by_id(4)
        .exec(app.test_db().writer())
        .await
        .expect("delete");
    assert_broken_at(&app, 5).await;
}

/// With every entry archived the chain is empty: it verifies when the head is the anchor.
async fn archiving_everything_still_verifies(backend: Backend) {
    let (app, db) = app(backend, KEY1).await;
    write(&app, 3).await;
    backdate_through(&app, 3).await;
    let report = app
        .archive_audit(
            Utc::now() - chrono::Duration::days(365),
            &db.dir().join("a"),
        )
        .await
        .expect("archive");
    assert_eq!(report.entries, 3);
    let after = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("an empty, anchored chain verifies");
    assert_eq!((after.entries, after.anchored_at_archive), (0, true));
    write(&app, 1).await;
    let after = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("and keeps verifying");
    assert_eq!(after.first_id, Some(4));
}

/// Archiving moves entries out for good, so a chain that does not verify is not archived:
/// the tampered entries stay where verify sees them.
async fn archive_refuses_a_broken_chain(backend: Backend) {
    let (app, db) = app(backend, KEY1).await;
    write(&app, 4).await;
    backdate_through(&app, 4).await;
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(1),
        ip: Set(Some("10.1.1.1".into())),
        pseudonymized_at: Set(Some(Utc::now())),
        ..Default::default()
    })
    .exec(app.test_db().writer())
    .await
    .expect("tamper");
    let err = app
        .archive_audit(
            Utc::now() - chrono::Duration::days(365),
            &db.dir().join("a"),
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("entry 1"), "{err}");
    assert_broken_at(&app, 1).await;
    assert_eq!(
        store::audit::archive_anchor(app.test_db().reader())
            .await
            .expect("anchor")
            .0,
        0
    );
}

/// Writes one entry as `ctx` about `user`.
async fn record_as(app: &app::App, ctx: &app::Ctx, user: uuid::Uuid) {
    let txn = app.test_db().writer().begin().await.expect("begin");
    app::audit::record(
        &txn,
        ctx,
        app::audit::AuditRecord::new(
            AuditAction::UserUpdated,
            Some(domain::UserId::from_uuid(user)),
        )
        .details(serde_json::json!({"email": "person@example.com"})),
    )
    .await
    .expect("record");
    txn.commit().await.expect("commit");
}

async fn soft_delete(app: &app::App, user: uuid::Uuid) {
    store::entities::users::Entity::update(store::entities::users::ActiveModel {
        id: Set(user),
        deleted_at: Set(Some(Utc::now() - chrono::Duration::days(40))),
        ..Default::default()
    })
    .exec(app.test_db().writer())
    .await
    .expect("soft delete");
}

/// A real purge: the entries naming the user are pseudonymized, the records say which, and
/// the chain verifies. An entry naming two users (an admin acting on another user) is
/// pseudonymized once per purge and still verifies after both.
async fn purge_records_its_pseudonymizations_and_verifies(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    let (admin, _) = common::user_with_integration(&app, "user_admin", "google").await;
    let (bob, _) = common::user_with_integration(&app, "user_bob", "google").await;
    let meta = app::RequestMeta {
        ip: Some("192.0.2.7".into()),
        user_agent: Some("Firefox".into()),
        request_id: Some("req-1".into()),
    };
    let by_admin = common::owner(&app, "user_admin", meta).await;
    record_as(&app, by_admin.ctx(), bob).await; // 1: names both
    record_as(&app, &app::Ctx::system("test"), bob).await; // 2: names bob
    record_as(&app, &app::Ctx::system("test"), admin).await; // 3: names the admin
    let ctx = app::Ctx::system("purge_users");

    soft_delete(&app, admin).await;
    let first = app
        .purge_deleted_users(&ctx, Utc::now())
        .await
        .expect("purge");
    assert_eq!(first.audit_entries_pseudonymized, 2);
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("verifies after the first purge");
    soft_delete(&app, bob).await;
    let second = app
        .purge_deleted_users(&ctx, Utc::now())
        .await
        .expect("purge");
    assert_eq!(
        second.audit_entries_pseudonymized, 2,
        "entry 1 again, and 2"
    );
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("verifies after the second purge");

    let all = audit_log::Entity::find()
        .all(app.test_db().reader())
        .await
        .expect("entries");
    let text = format!("{all:?}");
    for personal in ["user_admin", "user_bob", "192.0.2.7", "Firefox", "person@"] {
        assert!(!text.contains(personal), "{personal} left in the audit log");
    }
    for id in [admin, bob] {
        assert!(
            !text.contains(&id.to_string()),
            "user id left in the audit log"
        );
    }
    let records: Vec<_> = all
        .iter()
        .filter(|e| e.action == "audit.pseudonymized")
        .collect();
    assert_eq!(records.len(), 2, "one record per purged user here");
    let named: Vec<i64> = records
        .iter()
        .flat_map(|r| r.details["entries"].as_array().expect("entries").clone())
        .map(|c| c["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(named, vec![1, 3, 1, 2]);
}

/// A database archived by the old code (oldest entries gone, no anchor) migrates: the
/// migration anchors it at its first remaining entry, and from then on a gap there breaks.
async fn migration_anchors_a_database_archived_before(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = store::Db::connect(tdb.url(), None, &store::DbOptions::default())
        .await
        .expect("connect");
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261202_000001_audit_archive_anchor")
        .expect("the anchor migration");
    Migrator::up(db.writer(), Some(before as u32))
        .await
        .expect("older migrations");
    let app = app::App::new(db.clone(), common::vault(KEY1));
    write(&app, 5).await;
    // What the archive job did before the anchor existed: delete, remember nothing.
    audit_log::Entity::delete_many()
        .filter(audit_log::Column::Id.lte(2))
        .exec(db.writer())
        .await
        .expect("old archive");
    db.migrate().await.expect("the anchor migration");
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("the migrated chain verifies");
    assert_eq!(
        (report.first_id, report.anchored_at_archive),
        (Some(3), true)
    );
    audit_log::Entity::delete_by_id(3)
        .exec(db.writer())
        .await
        .expect("delete");
    assert_broken_at(&app, 4).await;
}
