//! The group-commit audit writer (`app::access_log`) under faults, on both backends: an
//! entry the database refuses is written in a safe form and the entries after it still
//! land; an outage is retried, not dropped, while callers are refused within the bound; a
//! full queue refuses at once. Faults are real: a value the database refuses (a NUL for
//! Postgres' jsonb, a trigger that refuses a marked entry), a lock held by another
//! connection, a database that stops taking connections.

mod common;

use std::time::Duration;

use app::{
    AppError,
    audit::{AuditRecord, access_log::AccessLogSettings},
};
use common::{KEY1, app};
use domain::{UserId, audit::AuditAction};
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QueryOrder};
use serde_json::{Value, json};
use store::{Db, DbOptions, TransactionTrait, entities::audit_log};
use testkit::{Backend, TestDb, both_backends};

both_backends!(
    a_nul_entry_is_kept_and_the_entries_after_it_land,
    an_entry_refused_in_every_escaped_form_is_kept_as_a_stub,
    an_outage_is_retried_and_callers_are_refused_within_the_bound,
    a_full_queue_refuses_at_once,
);

fn access(details: Value) -> AuditRecord {
    AuditRecord::new(AuditAction::TokenAccessed, Some(UserId::new()))
        .resource("integration", "google")
        .details(details)
}

/// Holds the chain head in a transaction of its own (Postgres: the head row's lock; SQLite:
/// the write lock), so the writer's next batch waits and entries pile up behind it.
async fn hold_chain(db: &Db) -> DatabaseTransaction {
    let txn = db.writer().begin().await.expect("begin");
    app::audit::record(
        &txn,
        &app::Ctx::system("test"),
        AuditRecord::new(AuditAction::UserUpdated, None),
    )
    .await
    .expect("record");
    txn
}

/// While another transaction holds the chain, queues a blocker (the writer takes it alone
/// and waits), then `bad` and 20 good entries, which pile up and meet in the next batch.
/// Returns every stored `token.accessed` entry but the blocker, oldest first.
async fn bad_then_twenty(app: &app::App, bad: Value) -> Vec<audit_log::Model> {
    let held = hold_chain(app.test_db()).await;
    let queue = |details: Value| {
        let app = app.clone();
        tokio::spawn(async move {
            app.access_log()
                .record(&app::Ctx::system("test"), access(details))
                .await
        })
    };
    let mut waiting = vec![queue(json!({"blocker": true}))];
    tokio::time::sleep(Duration::from_millis(200)).await;
    waiting.push(queue(bad));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        waiting.push(queue(json!({"i": i})));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.commit().await.expect("release");
    for (n, w) in waiting.into_iter().enumerate() {
        let answer = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("the writer did not stall")
            .expect("join");
        assert!(answer.is_ok(), "entry {n} was answered {answer:?}");
    }
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("audit verify passes");
    assert_eq!(
        report.entries, 23,
        "the holder's, the blocker, the bad one and 20"
    );
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(app.test_db().writer())
        .await
        .expect("rows")
        .into_iter()
        .filter(|e| e.action == "token.accessed" && e.details.get("blocker").is_none())
        .collect()
}

/// The bad entry (first: it was queued before them) and all 20 good ones.
fn bad_and_twenty(rows: &[audit_log::Model]) -> &audit_log::Model {
    assert_eq!(rows.len(), 21);
    let mut good: Vec<i64> = rows[1..]
        .iter()
        .filter_map(|e| e.details.get("i").and_then(Value::as_i64))
        .collect();
    good.sort_unstable();
    assert_eq!(good, (0..20).collect::<Vec<_>>(), "all 20 after it");
    &rows[0]
}

async fn a_nul_entry_is_kept_and_the_entries_after_it_land(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    let rows = bad_then_twenty(&app, json!({"provider": "google", "scopes": ["\u{0}"]})).await;
    let bad = bad_and_twenty(&rows);
    match backend {
        // jsonb refuses `\u0000` (22P05): written with the NUL spelled out, and marked.
        Backend::Postgres => {
            assert_eq!(bad.details["scopes"], json!(["\\u0000"]), "{}", bad.details);
            assert_eq!(bad.details["audit_rescue"]["form"], "escaped");
            assert_eq!(bad.details["audit_rescue"]["error"], "22P05");
            assert_eq!(bad.resource_id.as_deref(), Some("google"));
        }
        // SQLite stores JSON as text and takes the NUL as it is: nothing to rescue.
        Backend::Sqlite => {
            assert_eq!(bad.details["scopes"], json!(["\u{0}"]));
            assert!(bad.details.get("audit_rescue").is_none());
        }
    }
}

/// A trigger refuses every entry whose details mention `poison` (SQLite: `RAISE(ABORT)`, a
/// constraint error; Postgres: `check_violation`), so the escaped form is refused too.
async fn refuse_poison(db: &Db) {
    let w = db.writer();
    match w.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            w.execute_unprepared(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.details::text LIKE '%poison%' THEN \
                 RAISE EXCEPTION 'poisoned entry' USING ERRCODE = 'check_violation'; END IF; \
                 RETURN NEW; END $$",
            )
            .await
            .expect("function");
            w.execute_unprepared(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
            )
            .await
            .expect("trigger");
        }
        _ => {
            w.execute_unprepared(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
                 WHEN NEW.details LIKE '%poison%' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END",
            )
            .await
            .expect("trigger");
        }
    }
}

async fn an_entry_refused_in_every_escaped_form_is_kept_as_a_stub(backend: Backend) {
    let (app, _db) = app(backend, KEY1).await;
    refuse_poison(app.test_db()).await;
    let rows = bad_then_twenty(&app, json!({"scopes": ["poison"]})).await;
    let stub = bad_and_twenty(&rows);
    let code = match backend {
        Backend::Postgres => "23514",
        Backend::Sqlite => "1811",
    };
    assert_eq!(
        stub.details,
        json!({"audit_rescue": {"form": "stub", "error": code}})
    );
    assert_eq!(stub.action, "token.accessed");
    assert!(stub.user_id.is_some(), "still says whose token was read");
    assert!(stub.resource_id.is_none() && stub.request_id.is_none());
}

/// Makes the database fail for the writer until the returned guard is released: Postgres
/// stops taking connections to it and ends the open ones; SQLite has another connection
/// hold the write lock (the writer's attempts fail with SQLITE_BUSY).
enum Outage {
    Postgres { admin: String, name: String },
    Sqlite(DatabaseTransaction, Db),
}

impl Outage {
    async fn start(tdb: &TestDb) -> Self {
        match tdb.backend() {
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let name = tdb.url().rsplit('/').next().expect("name");
                let name = name.split('?').next().expect("name").to_owned();
                let conn = sea_orm::Database::connect(&admin).await.expect("admin");
                conn.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                    .await
                    .expect("refuse connections");
                conn.execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
                .await
                .expect("end connections");
                Self::Postgres { admin, name }
            }
            Backend::Sqlite => {
                let other = Db::connect(tdb.url(), None, &DbOptions::default())
                    .await
                    .expect("second connection");
                let txn = hold_chain(&other).await;
                Self::Sqlite(txn, other)
            }
        }
    }

    async fn end(self) {
        match self {
            Self::Postgres { admin, name } => {
                let conn = sea_orm::Database::connect(&admin).await.expect("admin");
                conn.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .await
                    .expect("take connections");
            }
            // The holder's own entry is rolled back: only the writer's entries remain.
            Self::Sqlite(txn, _db) => txn.rollback().await.expect("release"),
        }
    }
}

async fn an_outage_is_retried_and_callers_are_refused_within_the_bound(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let app = app.with_access_log(AccessLogSettings {
        queue: 1024,
        commit_timeout: Duration::from_millis(500),
    });
    let ctx = app::Ctx::system("test");
    app.access_log()
        .record(&ctx, access(json!({"i": "before"})))
        .await
        .expect("written while the database is up");
    let outage = Outage::start(&tdb).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        app.access_log()
            .record(&ctx, access(json!({"i": "during"}))),
    )
    .await
    .expect("refused within the bound, not left hanging");
    assert!(
        matches!(refused, Err(AppError::Unavailable(_))),
        "{refused:?}"
    );
    // The writer keeps retrying through the outage (SQLite: past the 5 s busy timeout, so
    // attempts fail and are retried); once it ends the entry is written.
    let lasting = match backend {
        Backend::Postgres => 1500,
        Backend::Sqlite => 6500,
    };
    tokio::time::sleep(Duration::from_millis(lasting)).await;
    outage.end().await;
    tokio::time::timeout(Duration::from_secs(60), app.access_log().flush())
        .await
        .expect("written after the outage");
    app.access_log()
        .record(&ctx, access(json!({"i": "after"})))
        .await
        .expect("written after the outage");
    let rows = store::audit::after(app.test_db().writer(), 0, 100)
        .await
        .expect("rows");
    let is: Vec<String> = rows.iter().map(|e| e.details["i"].to_string()).collect();
    assert_eq!(
        is,
        ["\"before\"", "\"during\"", "\"after\""],
        "nothing dropped"
    );
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("audit verify passes");
}

async fn a_full_queue_refuses_at_once(backend: Backend) {
    let (app, _tdb) = app(backend, KEY1).await;
    let app = app.with_access_log(AccessLogSettings {
        queue: 2,
        commit_timeout: Duration::from_secs(600),
    });
    let held = hold_chain(app.test_db()).await;
    let ctx = app::Ctx::system("test");
    // The writer takes the first entry and waits on the held chain; two more fill the queue.
    let mut waiting = Vec::new();
    for i in 0..3 {
        let app = app.clone();
        let ctx = ctx.clone();
        waiting.push(tokio::spawn(async move {
            app.access_log().record(&ctx, access(json!({"i": i}))).await
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        app.access_log().record(&ctx, access(json!({"i": 3}))),
    )
    .await
    .expect("a full queue answers, it does not hang");
    assert!(
        matches!(refused, Err(AppError::Unavailable(_))),
        "{refused:?}"
    );
    held.commit().await.expect("release");
    for w in waiting {
        w.await.expect("join").expect("queued entries are written");
    }
}
