//! Dependency outages, injected for real (docs/reliability.md): Postgres behind a TCP proxy
//! that the test cuts, SQLite locked by another connection, made read-only, or full. Every
//! route that needs the database answers 503 `service_unavailable` with `Retry-After`
//! within the pool's acquire timeout, `/health` stays 200, `/ready` is 503, a write refused
//! during the outage is not applied, and the same process serves again once the database
//! is back.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use testkit::FaultProxy;

use crate::common::{Backend, TestApp, TestDb, assert_problem, spawn_app_on, spawn_app_with};

/// The acquire timeout the outage tests run with (`DATABASE_ACQUIRE_TIMEOUT_MS`).
const ACQUIRE: Duration = Duration::from_millis(1000);
/// Slack on top of it for a loaded test machine: far below the 30 s request timeout, so a
/// hang (or the request timeout's own 503) would fail the test.
const SLACK: Duration = Duration::from_millis(2500);

/// `method path` as `bearer`, with `body` when given; the answer and how long it took.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> (reqwest::Response, Duration) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(b);
    }
    let started = Instant::now();
    let res = req.send().await.expect("the service answers");
    (res, started.elapsed())
}

/// Asserts the answer is the outage problem, in time; returns its body.
async fn assert_unavailable(what: &str, res: reqwest::Response, took: Duration) -> Value {
    assert!(
        took <= ACQUIRE + SLACK,
        "{what}: answered after {took:?}, the acquire timeout is {ACQUIRE:?}"
    );
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    assert!(
        retry.is_some_and(|s| s >= 1),
        "{what}: Retry-After {retry:?}"
    );
    let body = assert_problem(res, 503, "service_unavailable").await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("database")),
        "{what}: {body}"
    );
    // Never the internals: no SQL, no driver message.
    let text = body.to_string();
    for leak in ["sqlx", "pool", "SELECT", "UPDATE", "Io("] {
        assert!(!text.contains(leak), "{what} leaks {leak}: {text}");
    }
    body
}

async fn first_name(app: &TestApp, bearer: &str) -> Value {
    let (res, _) = call(app, Method::GET, "/users/me", bearer, None).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.expect("user")["first_name"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_a_503_and_the_service_heals() {
    let db = TestDb::new(Backend::Postgres).await;
    let (proxy, url) = FaultProxy::for_url(db.url()).await;
    let acquire = ACQUIRE.as_millis().to_string();
    let app = spawn_app_on(
        db,
        &[
            ("DATABASE_URL", url.as_str()),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", acquire.as_str()),
        ],
    )
    .await;
    app.insert_user("user_ada").await;
    let ada = app.user_token("user_ada", false);
    let admin = app.user_token("user_root", true);
    let key = app.service_key("billing", &["tokens:read"]).await;
    let patch = json!({"first_name": "Before"});
    let (res, _) = call(&app, Method::PATCH, "/users/me", &ada, Some(&patch)).await;
    assert_eq!(res.status(), 200);

    proxy.cut();
    let refused = json!({"first_name": "DuringOutage"});
    let routes: [(Method, &str, &str, Option<&Value>); 7] = [
        (Method::GET, "/users/me", &ada, None),
        (Method::PATCH, "/users/me", &ada, Some(&refused)),
        (Method::GET, "/users/me/preferences", &ada, None),
        (Method::GET, "/users/me/integrations", &ada, None),
        (Method::GET, "/users", &admin, None),
        (Method::GET, "/admin/jobs", &admin, None),
        (
            Method::POST,
            "/internal/tokens/get",
            &key,
            Some(&json!({"user_id": "user_ada", "provider": "google"})),
        ),
    ];
    for (method, path, bearer, body) in routes {
        let what = format!("{method} {path}");
        let (res, took) = call(&app, method, path, bearer, body).await;
        assert_unavailable(&what, res, took).await;
    }
    // Liveness stays up (and answers promptly), readiness says why not.
    let started = Instant::now();
    let health: Value = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    assert!(started.elapsed() <= ACQUIRE + SLACK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "error");
    let res = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_problem(res, 503, "service_unavailable").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("database")
    );

    // Back: the same process serves again, without a restart.
    proxy.restore();
    let back = Instant::now();
    loop {
        let (res, _) = call(&app, Method::GET, "/users/me", &ada, None).await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 503, "only 503 while recovering");
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not serving 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The figure docs/reliability.md quotes.
    eprintln!(
        "postgres outage: serving again {:?} after the restore",
        back.elapsed()
    );
    assert_eq!(
        first_name(&app, &ada).await,
        "Before",
        "the write refused during the outage was not applied"
    );
    let ready = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let (res, _) = call(&app, Method::PATCH, "/users/me", &ada, Some(&patch)).await;
    assert_eq!(res.status(), 200, "writes work again");

    // A refused port (the host is up, Postgres is not) is the same 503, sooner.
    proxy.refuse();
    let (res, took) = call(&app, Method::PATCH, "/users/me", &ada, Some(&refused)).await;
    assert_unavailable("PATCH /users/me, port refused", res, took).await;
    proxy.restore();
    let back = Instant::now();
    while call(&app, Method::GET, "/users/me", &ada, None)
        .await
        .0
        .status()
        != 200
    {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not serving again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first_name(&app, &ada).await, "Before");
}

/// A SQLite test app with a short acquire (and so busy) timeout; returns it with a user.
async fn sqlite_app() -> (TestApp, String) {
    let acquire = ACQUIRE.as_millis().to_string();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("DATABASE_ACQUIRE_TIMEOUT_MS", acquire.as_str())],
    )
    .await;
    app.insert_user("user_ada").await;
    let ada = app.user_token("user_ada", false);
    let (res, _) = call(
        &app,
        Method::PATCH,
        "/users/me",
        &ada,
        Some(&json!({"first_name": "Before"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    (app, ada)
}

fn sqlite_path(app: &TestApp) -> std::path::PathBuf {
    app.db.dir().join("test.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_database_is_a_503() {
    use sqlx::{Connection as _, SqliteConnection};
    let (app, ada) = sqlite_app().await;
    // Another process's connection holds the write lock past the busy timeout.
    let mut other = SqliteConnection::connect(app.db.url())
        .await
        .expect("second connection");
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .expect("exclusive lock");
    let refused = json!({"first_name": "WhileLocked"});
    // A transaction that writes first waits the busy timeout (the acquire timeout); one
    // that read first fails at once (SQLite does not wait to upgrade a read to a write).
    let (res, took) = call(&app, Method::PATCH, "/users/me", &ada, Some(&refused)).await;
    assert_unavailable("PATCH while locked", res, took).await;
    // WAL: readers are not blocked by a writer.
    assert_eq!(first_name(&app, &ada).await, "Before");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("release");
    let (res, _) = call(
        &app,
        Method::PATCH,
        "/users/me",
        &ada,
        Some(&json!({"first_name": "After"})),
    )
    .await;
    assert_eq!(res.status(), 200, "the lock is gone: writes work again");
    assert_eq!(first_name(&app, &ada).await, "After");
}

/// `chattr ±i`: immutable even for root (the tests run as root in CI, where permission
/// bits would not stop a write).
fn set_immutable(path: &std::path::Path, on: bool) {
    let flag = if on { "+i" } else { "-i" };
    let status = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("chattr (e2fsprogs) must be installed");
    assert!(status.success(), "chattr {flag} {}", path.display());
}

/// Lifts the immutable flags even when the test fails, so the folder can be removed.
struct Immutable(Vec<std::path::PathBuf>);

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            set_immutable(p, false);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_files_are_a_503() {
    let (app, ada) = sqlite_app().await;
    let db = sqlite_path(&app);
    let wal = db.with_extension("db-wal");
    // The filesystem refuses writes to the database and its WAL (as after a remount
    // read-only): what the engine sees is a write error on its own open files.
    let files: Vec<_> = [db, wal].into_iter().filter(|p| p.exists()).collect();
    for p in &files {
        set_immutable(p, true);
    }
    let guard = Immutable(files);
    let refused = json!({"first_name": "ReadOnly"});
    let (res, took) = call(&app, Method::PATCH, "/users/me", &ada, Some(&refused)).await;
    assert_unavailable("PATCH on read-only files", res, took).await;
    drop(guard);
    // Writable again: the same process writes again.
    let back = Instant::now();
    loop {
        let (res, _) = call(
            &app,
            Method::PATCH,
            "/users/me",
            &ada,
            Some(&json!({"first_name": "After"})),
        )
        .await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 503);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no write after the fault"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first_name(&app, &ada).await, "After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_database_is_a_503() {
    use sea_orm::ConnectionTrait as _;
    let (app, ada) = sqlite_app().await;
    // The service's own single writer connection may not grow the file any more: what a
    // full disk does to SQLite (SQLITE_FULL), on the real write path.
    let writer = app.state.app().test_db().writer();
    writer
        .execute_unprepared("PRAGMA max_page_count = 1")
        .await
        .expect("pragma");
    // Each change adds an audit entry; pages run out within a few.
    let mut refused = None;
    for i in 0..200 {
        let body = json!({"first_name": format!("Fill{i}"), "last_name": "x".repeat(100)});
        let (res, took) = call(&app, Method::PATCH, "/users/me", &ada, Some(&body)).await;
        match res.status().as_u16() {
            200 => {}
            503 => {
                assert_unavailable("PATCH on a full database", res, took).await;
                refused = Some(i);
                break;
            }
            other => panic!(
                "PATCH on a full database: {other} {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }
    let refused = refused.expect("the database filled up");
    assert_ne!(
        first_name(&app, &ada).await,
        format!("Fill{refused}"),
        "the refused write was not applied"
    );
    writer
        .execute_unprepared("PRAGMA max_page_count = 1073741823")
        .await
        .expect("pragma");
    let (res, _) = call(
        &app,
        Method::PATCH,
        "/users/me",
        &ada,
        Some(&json!({"first_name": "After"})),
    )
    .await;
    assert_eq!(res.status(), 200, "room again: writes work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_partition_keeps_serving_on_local_limits() {
    let redis = std::env::var("TEST_REDIS_URL")
        .expect("TEST_REDIS_URL must be set (scripts/test starts Redis and exports it)");
    let (proxy, url) = FaultProxy::for_url(&redis).await;
    let app = spawn_app_with(Backend::Sqlite, &[("REDIS_URL", url.as_str())]).await;
    let ready = |app: &TestApp| {
        let req = app.client.get(app.url("/ready"));
        async move {
            let res = req.send().await.expect("ready");
            assert_eq!(res.status(), 200, "a Redis outage does not fail readiness");
            res.json::<Value>().await.expect("JSON")["redis"].clone()
        }
    };
    let wait_for = |want: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            while ready(app).await != want {
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "redis never {want}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for("ok").await;
    app.insert_user("user_ada").await;
    let ada = app.user_token("user_ada", false);
    // Swallowed, not refused: Redis hangs. Requests are decided locally, promptly.
    proxy.cut();
    for _ in 0..5 {
        let (res, took) = call(&app, Method::GET, "/users/me", &ada, None).await;
        assert_eq!(res.status(), 200);
        assert!(
            took < Duration::from_secs(2),
            "a hung Redis held a request {took:?}"
        );
        assert!(res.headers().contains_key("ratelimit-limit"));
    }
    wait_for("degraded").await;
    proxy.restore();
    wait_for("ok").await;
}
