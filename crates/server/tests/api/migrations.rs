//! Expand/contract upgrades (docs/adr/0007-expand-contract-migrations.md): the previous
//! release serves on the next release's schema, and a release never serves on a schema that
//! lacks one of its own migrations.

use sea_orm::ConnectionTrait;
use sea_orm_migration::MigratorTrait;
use testkit::{Backend, TestDb, both_backends};

use crate::common::{assert_exit, assert_problem, spawn_app_on};

both_backends!(
    serves_on_a_schema_with_a_newer_release_migration,
    not_ready_while_one_of_its_migrations_is_missing,
    refuses_a_diverged_schema
);

const FUTURE: &str = "m20991231_000001_future_expand";

fn user_service(db: &TestDb, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .args(args)
        .current_dir(db.dir())
        .env("DATABASE_URL", db.url())
        .env("DATA_DIR", db.dir().join("data"))
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "text")
        .output()
        .expect("binary runs")
}

/// Log lines (standard output) and errors (standard error) together.
fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn connect(db: &TestDb) -> testkit::store::Db {
    testkit::store::Db::connect(db.url(), None, &testkit::store::DbOptions::default())
        .await
        .expect("connect")
}

/// What the next release's expand step would do: a nullable column on a table we read and
/// write, a new table, and its record in the migration table.
async fn apply_future_expand(db: &testkit::store::Db) {
    let w = db.writer();
    for sql in [
        "ALTER TABLE users ADD COLUMN nickname TEXT NULL",
        "CREATE TABLE future_things (id BIGINT PRIMARY KEY, note TEXT NOT NULL)",
        &format!("INSERT INTO seaql_migrations (version, applied_at) VALUES ('{FUTURE}', 0)"),
    ] {
        w.execute_unprepared(sql).await.expect(sql);
    }
}

async fn serves_on_a_schema_with_a_newer_release_migration(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connect(&db).await;
    conn.migrate().await.expect("migrate");
    apply_future_expand(&conn).await;
    conn.close().await;

    // sea-orm-migration alone refuses this database ("applied but its file is missing").
    let out = user_service(&db, &["migrate"]);
    let log = output_text(&out);
    assert!(out.status.success(), "migrate must accept it: {log}");
    assert!(
        log.contains("does not know") && log.contains(FUTURE),
        "migrate warns, naming the unknown migration: {log}"
    );

    let app = spawn_app_on(db, &[]).await;
    let ready = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200, "ready on the newer schema");
    // Reads and writes of the table the newer release extended still work.
    app.insert_user("user_expand").await;
    let token = app.user_token("user_expand", false);
    let patched = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"first_name": "Ada"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let user = app.get_json("/users/me", &token).await;
    assert_eq!(user["first_name"], "Ada");
    let prefs = app.get_json("/users/me/preferences", &token).await;
    assert_eq!(prefs["schema_version"], 1);
}

async fn not_ready_while_one_of_its_migrations_is_missing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connect(&db).await;
    conn.migrate().await.expect("migrate");
    // The schema of the release before this one: its newest migration undone.
    testkit::store::migration::Migrator::down(conn.writer(), Some(1))
        .await
        .expect("down one");
    conn.close().await;
    let newest = testkit::store::migration::state::known_migrations()
        .pop()
        .expect("a migration");

    // `serve --no-migrate` sets RUN_MIGRATIONS=false.
    let app = spawn_app_on(db, &[("RUN_MIGRATIONS", "false")]).await;
    let res = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    let problem = assert_problem(res, 503, "service_unavailable").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&newest),
        "/ready names the missing migration {newest}: {detail}"
    );
    // Liveness is not readiness: the process is alive.
    let health = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    let out = user_service(&app.db, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(res.status(), 200, "ready once migrated, without a restart");
}

async fn refuses_a_diverged_schema(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connect(&db).await;
    conn.migrate().await.expect("migrate");
    testkit::store::migration::Migrator::down(conn.writer(), Some(1))
        .await
        .expect("down one");
    apply_future_expand(&conn).await;
    conn.close().await;
    let out = user_service(&db, &["migrate"]);
    let log = output_text(&out);
    assert!(!out.status.success(), "a diverged schema is refused");
    assert!(
        log.contains("diverged") && log.contains(FUTURE),
        "the refusal names what differs: {log}"
    );
    // `migrate` failed (exit 1) on the divergence itself, not on anything before it.
    assert_exit(&out, 1, "the schema has diverged from this release");
}
