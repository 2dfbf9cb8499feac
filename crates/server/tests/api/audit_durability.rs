//! A killed process loses nothing it acknowledged: the real `user-service` binary hands
//! out tokens under concurrent load, is SIGKILLed right after answers, and every token it
//! answered 200 for has its committed `token.accessed` entry (found by the answer's request
//! id); `user-service audit verify` passes on what is left. And what could not be audited
//! is not served: a hand-out whose entry cannot commit answers 503.

use std::{
    collections::HashSet,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use testkit::store::entities::audit_log;
use testkit::{TestDb, both_backends};

use crate::{
    common::{Backend, assert_problem, spawn_app_with},
    connected::{app_with, connect},
    fake_provider::FakeProvider,
};

both_backends!(
    a_killed_service_keeps_every_answered_token_audited,
    a_token_whose_entry_cannot_commit_is_not_served,
);

/// Concurrent clients; the kill comes once this many answers have arrived, and again
/// after a fresh start, so the window is hit under full load more than once.
const CLIENTS: usize = 32;
const ANSWERS_BEFORE_KILL: usize = 300;
const ROUNDS: usize = 3;

async fn a_killed_service_keeps_every_answered_token_audited(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google"]).await;
    app.insert_user("user_kill").await;
    let session = app.user_token("user_kill", false);
    connect(&app, &fake, &session, "google").await;
    let key = app.service_key("mail-sync", &["tokens:read"]).await;
    let db = app.stop().await;

    let mut answered = HashSet::new();
    for _ in 0..ROUNDS {
        answered.extend(load_then_kill(&db, &fake, &key).await);
    }
    assert!(answered.len() >= ROUNDS * ANSWERS_BEFORE_KILL);

    let conn = testkit::store::Db::connect(db.url(), None, &testkit::store::DbOptions::default())
        .await
        .expect("connect");
    let audited: HashSet<String> = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("token.accessed"))
        .all(conn.writer())
        .await
        .expect("entries")
        .into_iter()
        .filter_map(|e| e.request_id)
        .collect();
    conn.close().await;
    let lost: Vec<&String> = answered.difference(&audited).collect();
    assert!(
        lost.is_empty(),
        "{} of {} tokens answered 200 have no token.accessed entry after SIGKILL",
        lost.len(),
        answered.len()
    );
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .args(["audit", "verify"])
        .current_dir(db.dir())
        .env("DATABASE_URL", db.url())
        .env("DATA_DIR", db.dir().join("data"))
        .env("RUST_LOG", "error")
        .output()
        .expect("audit verify runs");
    assert!(
        verify.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Starts the binary on `db`, drives `CLIENTS` concurrent hand-outs, SIGKILLs it as soon as
/// `ANSWERS_BEFORE_KILL` answers have come back; returns the request ids answered 200.
async fn load_then_kill(db: &TestDb, fake: &FakeProvider, key: &str) -> HashSet<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .current_dir(db.dir())
        .env("DATABASE_URL", db.url())
        .env("DATA_DIR", db.dir().join("data"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("JOBS_WORKER", "false")
        .env("RATE_LIMIT_SERVICE_PER_MINUTE", "10000000")
        .env("RUST_LOG", "error")
        .env("OAUTH_REDIRECT_URI", "https://app.example/oauth/callback")
        .envs(fake.env("google"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the service became ready");

    let ids = Arc::new(Mutex::new(HashSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, ids, count) = (client.clone(), ids.clone(), count.clone());
        let (url, key) = (format!("{base}/internal/tokens/get"), key.to_owned());
        clients.push(tokio::spawn(async move {
            // Until the process dies: a refused or cut connection ends this client.
            while let Ok(res) = client
                .post(&url)
                .header("x-api-key", &key)
                .json(&serde_json::json!({"user_id": "user_kill", "provider": "google"}))
                .send()
                .await
            {
                let status = res.status();
                let rid = res
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                // A token counts as handed out once its body has arrived in full.
                let Ok(body) = res.json::<serde_json::Value>().await else {
                    break;
                };
                if status == 200 && body["access_token"].is_string() {
                    ids.lock().expect("lock").insert(rid.expect("request id"));
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let started = std::time::Instant::now();
    while count.load(Ordering::SeqCst) < ANSWERS_BEFORE_KILL {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the service stopped handing out tokens"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // SIGKILL (tokio's `start_kill` on Unix), right after the answers: no shutdown runs.
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(30), c).await;
    }
    ids.lock().expect("lock").clone()
}

/// While another transaction holds the audit chain (the writer cannot commit), a hand-out
/// answers 503 `service_unavailable` with `Retry-After` within the commit bound, not the
/// token; once the chain is free the same request is served.
async fn a_token_whose_entry_cannot_commit_is_not_served(backend: Backend) {
    use testkit::store::TransactionTrait;
    let fake = FakeProvider::start().await;
    let mut env = fake.env("google");
    env.push(("AUDIT_COMMIT_TIMEOUT_MS".into(), "300".into()));
    env.push((
        "OAUTH_REDIRECT_URI".into(),
        "https://app.example/oauth/callback".into(),
    ));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_with(backend, &pairs).await;
    app.insert_user("user_held").await;
    let session = app.user_token("user_held", false);
    connect(&app, &fake, &session, "google").await;
    let key = app.service_key("mail-sync", &["tokens:read"]).await;
    let get = || {
        app.client
            .post(app.url("/internal/tokens/get"))
            .header("x-api-key", &key)
            .json(&serde_json::json!({"user_id": "user_held", "provider": "google"}))
            .send()
    };
    let held = app
        .state
        .app()
        .test_db()
        .writer()
        .begin()
        .await
        .expect("begin");
    app::audit::record(
        &held,
        &app::Ctx::system("test"),
        app::audit::AuditRecord::new(domain::audit::AuditAction::UserUpdated, None),
    )
    .await
    .expect("hold the chain");
    let res = tokio::time::timeout(Duration::from_secs(20), get())
        .await
        .expect("answered within the bound")
        .expect("request");
    assert!(res.headers().contains_key("retry-after"), "Retry-After");
    let body = assert_problem(res, 503, "service_unavailable").await;
    assert!(body.get("access_token").is_none());
    held.rollback().await.expect("release");
    let res = get().await.expect("request");
    assert_eq!(res.status(), 200);
}
