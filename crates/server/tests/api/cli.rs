//! The operator commands, run as a user would: the real binary, the test's database.

use std::process::Output;

use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use testkit::store::entities::audit_log;
use testkit::{Backend, TestDb, both_backends};

use crate::{
    common::{assert_exit, spawn_app_on},
    connected::{app_with_env, connect},
    fake_provider::FakeProvider,
};

const KEY_1: &str = "1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_2: &str = "2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

both_backends!(
    keys_status_prints_versions,
    keys_rotate_reencrypts_sealed_tokens,
    audit_verify_fails_on_tampering,
    audit_verify_fails_on_quiet_pseudonymization,
    audit_verify_fails_when_the_oldest_entries_are_deleted
);

fn run(db: &TestDb, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_user-service"));
    cmd.args(args)
        .current_dir(db.dir())
        .env("DATABASE_URL", db.url())
        .env("DATA_DIR", db.dir().join("data"))
        .env("RUST_LOG", "error");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

async fn keys_status_prints_versions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = run(&db, &["migrate"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = "1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let out = run(&db, &["keys", "status"], &[("TOKEN_ENCRYPTION_KEYS", keys)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        status,
        serde_json::json!({"active_version": 2, "ciphertexts_by_version": {"1": 0, "2": 0}})
    );
    let out = run(&db, &["keys", "rotate"], &[("TOKEN_ENCRYPTION_KEYS", keys)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("AQEBAQEB") && !text.contains("AgICAgIC"),
        "key material printed: {text}"
    );
}

/// `keys status` under both keys: the ciphertext count by key version.
fn ciphertexts_by_version(db: &TestDb) -> Value {
    let both = format!("{KEY_1},{KEY_2}");
    let out = run(db, &["keys", "status"], &[("TOKEN_ENCRYPTION_KEYS", &both)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(status["active_version"], 2);
    status["ciphertexts_by_version"].clone()
}

/// Real sealed tokens (a connection through the fake provider under key 1) are
/// re-encrypted by `keys rotate` and still open afterwards with key 2 alone.
async fn keys_rotate_reencrypts_sealed_tokens(backend: Backend) {
    let fake = FakeProvider::start().await;
    let providers = fake.env("google");
    let mut env: Vec<(&str, &str)> = providers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = app_with_env(
        backend,
        &fake,
        &["google"],
        &[("TOKEN_ENCRYPTION_KEYS", KEY_1)],
    )
    .await;
    app.insert_user("user_rotate").await;
    connect(&app, &fake, &app.user_token("user_rotate", false), "google").await;
    let key = app.service_key("mail-sync", &["tokens:read"]).await;
    let get = |app: &crate::common::TestApp| {
        app.client
            .post(app.url("/internal/tokens/get"))
            .header("x-api-key", &key)
            .json(&json!({"user_id": "user_rotate", "provider": "google"}))
            .send()
    };
    let before: Value = get(&app)
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let access = before["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let db = app.stop().await;

    let sealed = ciphertexts_by_version(&db);
    let n = sealed["1"].as_u64().expect("count");
    assert!(
        n >= 2,
        "the access and refresh tokens are sealed under key 1: {sealed}"
    );
    assert_eq!(sealed["2"], 0);
    let both = format!("{KEY_1},{KEY_2}");
    let out = run(
        &db,
        &["keys", "rotate"],
        &[("TOKEN_ENCRYPTION_KEYS", &both)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        (&report["rotated"], &report["failed"]),
        (&json!(n), &json!(0)),
        "{report}"
    );
    assert_eq!(ciphertexts_by_version(&db), json!({"1": 0, "2": n}));

    // Key 1 is gone: only a re-encrypted token can be opened now.
    env.push(("TOKEN_ENCRYPTION_KEYS", KEY_2));
    env.push(("OAUTH_REDIRECT_URI", crate::connected::CALLBACK));
    let app = spawn_app_on(db, &env).await;
    let res = get(&app).await.expect("request");
    assert_eq!(res.status(), 200);
    let after: Value = res.json().await.expect("json");
    assert_eq!(
        after["access_token"],
        access.as_str(),
        "the same token, opened under key 2"
    );
}

async fn audit_verify_fails_on_tampering(backend: Backend) {
    let db = TestDb::new(backend).await;
    assert!(run(&db, &["migrate"], &[]).status.success());
    // Three real entries, written through the app's audit API.
    let conn = testkit::store::Db::connect(db.url(), None, &testkit::store::DbOptions::default())
        .await
        .expect("connect");
    let app = app::App::new(conn, vault::Vault::new(vault::Keyring::generate_dev()));
    for _ in 0..3 {
        let txn = testkit::store::TransactionTrait::begin(app.test_db().writer())
            .await
            .expect("begin");
        app::audit::record(
            &txn,
            &app::Ctx::system("test"),
            app::audit::AuditRecord::new(domain::audit::AuditAction::UserUpdated, None),
        )
        .await
        .expect("record");
        txn.commit().await.expect("commit");
    }
    let ok = run(&db, &["audit", "verify"], &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("JSON report");
    assert_eq!(report["entries"], 3);

    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        action: Set("user.deleted".into()),
        ..Default::default()
    })
    .exec(app.test_db().writer())
    .await
    .expect("tamper");
    app.shutdown().await;
    let broken = run(&db, &["audit", "verify"], &[]);
    assert!(
        !broken.status.success(),
        "a broken chain must exit non-zero"
    );
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(
        err.contains("entry 2"),
        "names the first broken entry: {err}"
    );
    assert_exit(&broken, 1, "user-service: audit chain broken at entry 2:");
}

/// A migrated database with `n` entries written through the app's audit API.
async fn chain_of(db: &TestDb, n: usize) -> app::App {
    assert!(run(db, &["migrate"], &[]).status.success());
    let conn = testkit::store::Db::connect(db.url(), None, &testkit::store::DbOptions::default())
        .await
        .expect("connect");
    let app = app::App::new(conn, vault::Vault::new(vault::Keyring::generate_dev()));
    for _ in 0..n {
        let txn = testkit::store::TransactionTrait::begin(app.test_db().writer())
            .await
            .expect("begin");
        app::audit::record(
            &txn,
            &app::Ctx::system("test"),
            app::audit::AuditRecord::new(domain::audit::AuditAction::UserUpdated, None),
        )
        .await
        .expect("record");
        txn.commit().await.expect("commit");
    }
    assert!(run(db, &["audit", "verify"], &[]).status.success());
    app
}

fn assert_verify_fails_at(db: &TestDb, id: i64) {
    let broken = run(db, &["audit", "verify"], &[]);
    assert!(
        !broken.status.success(),
        "a broken chain must exit non-zero"
    );
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(
        err.contains(&format!("entry {id}:")),
        "names entry {id}: {err}"
    );
    assert_exit(
        &broken,
        1,
        &format!("user-service: audit chain broken at entry {id}:"),
    );
}

/// Issue 14 (a): personal fields rewritten under a `pseudonymized_at` no record covers.
async fn audit_verify_fails_on_quiet_pseudonymization(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = chain_of(&db, 3).await;
    audit_log::Entity::update(audit_log::ActiveModel {
        id: Set(2),
        actor_id: Set(Some("someone-else".into())),
        ip: Set(Some("10.0.0.1".into())),
        pseudonymized_at: Set(Some(chrono::Utc::now())),
        ..Default::default()
    })
    .exec(app.test_db().writer())
    .await
    .expect("tamper");
    app.shutdown().await;
    assert_verify_fails_at(&db, 2);
}

/// Issue 14 (b): the oldest entries deleted, nothing archived.
async fn audit_verify_fails_when_the_oldest_entries_are_deleted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = chain_of(&db, 3).await;
    audit_log::Entity::delete_by_id(1)
        .exec(app.test_db().writer())
        .await
        .expect("delete");
    app.shutdown().await;
    assert_verify_fails_at(&db, 2);
}
