//! Graceful shutdown: `/ready` turns 503, in-flight requests finish, the process exits 0.

use std::{process::Stdio, time::Duration};

use axum::routing::get;
use testkit::{Backend, TestDb};

use crate::common::{spawn_app, test_config};

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
    // The slow route says when it has the request, so the signal is sent while it is in
    // flight (no sleep that a slow machine could outrun).
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let in_handler = entered.clone();
    let router = server::http::router(state.clone()).merge(axum::Router::new().route(
        "/test/slow",
        get(move || async move {
            in_handler.notify_one();
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
    entered.notified().await;
    tx.send(()).expect("signal");
    for _ in 0..100 {
        if state.is_shutting_down() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(state.is_shutting_down());
    assert_eq!(
        slow.await.expect("join").expect("slow request answered"),
        "done"
    );
    server.await.expect("join").expect("server exits cleanly");
}

testkit::both_backends!(
    binary_turns_unready_then_exits_zero_on_sigterm,
    worker_binary_runs_jobs_and_exits_zero_on_sigterm,
);

/// The real binary: SIGTERM → `/ready` 503 during the configured delay → exit code 0. On
/// SQLite with zero configuration (the file appears under ./data), on Postgres by URL.
async fn binary_turns_unready_then_exits_zero_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let db = (backend == Backend::Postgres).then_some(TestDb::new(backend).await);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-service"));
    if let Some(db) = &db {
        command.env("DATABASE_URL", db.url());
    }
    let mut child = command
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
    sigterm(&child);
    // Wait for the signal to be seen (the listener stays open for the 2 s delay).
    let mut res = None;
    for _ in 0..100 {
        let r = client
            .get(&ready)
            .send()
            .await
            .expect("still listening during the delay");
        if r.status() == 503 {
            res = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = res.expect("/ready turned 503 within a second of SIGTERM");
    let body: serde_json::Value = res.json().await.expect("problem");
    assert_eq!(body["type"], "service_unavailable");
    exits_zero(&mut child).await;
    assert_eq!(
        dir.path().join("data/user-service.db").exists(),
        db.is_none(),
        "the SQLite file is created under ./data only when no DATABASE_URL is given"
    );
}

/// The process ends within 20 s with exit code 0.
async fn exits_zero(child: &mut tokio::process::Child) {
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The real `user-service worker` beside an API that runs no jobs (`JOBS_WORKER=false`, as
/// `serve --no-worker`): a job enqueued through the API is run by the worker process, which
/// on SIGTERM stops and exits 0.
async fn worker_binary_runs_jobs_and_exits_zero_on_sigterm(backend: Backend) {
    let api = spawn_app(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .arg("worker")
        .current_dir(dir.path())
        .env("DATABASE_URL", api.db.url())
        .env("RUN_MIGRATIONS", "false")
        .env("JOB_POLL_INTERVAL_SECONDS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    api.insert_user("user_ops").await;
    let admin = api.user_token("user_ops", true);
    let res = api
        .client
        .post(api.url("/admin/jobs/usage_analytics/run"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("enqueue");
    assert_eq!(res.status(), 202);
    let mut outcome = serde_json::Value::Null;
    for _ in 0..300 {
        let jobs = api.get_json("/admin/jobs", &admin).await;
        outcome = jobs["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|j| j["name"] == "usage_analytics")
            .expect("usage_analytics is listed")["last_outcome"]
            .clone();
        if outcome == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome, "succeeded", "the worker ran the job");
    sigterm(&child);
    exits_zero(&mut child).await;
}
