//! Graceful shutdown: `/ready` turns 503, in-flight requests finish, the process exits 0.

use std::{process::Stdio, time::Duration};

use axum::routing::get;
use testkit::{Backend, TestDb};

use crate::common::test_config;

/// A slow request in flight when shutdown begins still completes with its full answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_completes_after_shutdown_signal() {
    let db = TestDb::new(Backend::Sqlite).await;
    let application = server::startup::Application::build(test_config(&db, &[]))
        .await
        .expect("builds");
    let addr = application.local_addr().expect("addr");
    let state = application.state().clone();
    // The real router and the real serve loop, plus one deliberately slow route.
    let router = server::http::router(state.clone()).merge(axum::Router::new().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            "done"
        }),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let slow_addr = listener.local_addr().expect("addr");
    drop(application);
    let _ = addr;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::startup::serve(
        listener,
        router,
        state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    let slow = tokio::spawn(async move {
        reqwest::get(format!("http://{slow_addr}/test/slow"))
            .await?
            .text()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(()).expect("signal");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(state.is_shutting_down());
    assert_eq!(
        slow.await.expect("join").expect("slow request answered"),
        "done"
    );
    server.await.expect("join").expect("server exits cleanly");
}

/// The real binary: SIGTERM → `/ready` 503 during the configured delay → exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_turns_unready_then_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .current_dir(dir.path())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SHUTDOWN_DELAY_SECONDS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/ready");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "service became ready");
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = client
        .get(&ready)
        .send()
        .await
        .expect("still listening during the delay");
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("problem");
    assert_eq!(body["type"], "service_unavailable");
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
    assert!(
        dir.path().join("data/user-service.db").exists(),
        "SQLite file created under ./data"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The real `user-service worker`: it runs a job enqueued in the database (no HTTP API), and
/// on SIGTERM stops and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_binary_runs_jobs_and_exits_zero_on_sigterm() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/data/user-service.db", dir.path().display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .arg("worker")
        .current_dir(dir.path())
        .env("DATABASE_URL", &url)
        .env("JOB_POLL_INTERVAL_SECONDS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    // Polling an external process: it registers its jobs once migrated and started.
    let mut conn = None;
    for _ in 0..200 {
        if let Ok(mut c) = sqlx::SqliteConnection::connect(&url).await {
            let n: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
                .fetch_one(&mut c)
                .await;
            if n.is_ok_and(|n| n >= 5) {
                conn = Some(c);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = conn.expect("worker migrated and registered its jobs");
    sqlx::query(
        "INSERT INTO job_runs (job, run_key, \"trigger\", status, attempts, max_attempts, run_after, created_at) \
         VALUES ('usage_analytics', 'manual:test', 'manual', 'pending', 0, 3, ?, ?)",
    )
    .bind(chrono::Utc::now())
    .bind(chrono::Utc::now())
    .execute(&mut conn)
    .await
    .expect("enqueue");
    let mut status = String::new();
    for _ in 0..200 {
        status = sqlx::query_scalar("SELECT status FROM job_runs WHERE run_key = 'manual:test'")
            .fetch_one(&mut conn)
            .await
            .expect("status");
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded", "the worker ran the job");
    let _ = conn.close().await;
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
}
