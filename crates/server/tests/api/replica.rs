//! A read replica never serves a read that must be current (issue 13, item 7), against a
//! real streaming replica (`TEST_REPLICA_URL`, started by `scripts/test`): replay on the
//! standby is paused, a change is made on the primary, and the service's decision follows
//! the primary while the standby is shown to still hold the old state. These tests fail
//! (never skip) without `TEST_REPLICA_URL`, and run one at a time (the `replica` test
//! group): pausing replay pauses the whole standby.
//!
//! Also: `/ready` reports the replica apart (`database_replica`), a replica that is down
//! does not fail readiness, the replica pool is closed at shutdown, and a replica URL with
//! a SQLite primary is refused at start.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Backend, TestDb, replica::Standby};

use crate::{
    common::{TestApp, assert_exit, assert_problem, spawn_app_on},
    connected::connect,
    fake_provider::FakeProvider,
};

const CALLBACK: &str = "https://app.example/oauth/callback";

/// A Postgres app reading from the standby's copy of its database, with google pointed at
/// a fake provider and `clerk` connected to it; a key with every token permission.
async fn replica_app(clerk: &str) -> (TestApp, FakeProvider, Standby, String, String) {
    let standby = Standby::from_env();
    let db = TestDb::new(Backend::Postgres).await;
    let replica_url = standby.url_of(&db).await;
    let fake = FakeProvider::start().await;
    let mut env = vec![
        ("DATABASE_READ_URL".to_owned(), replica_url.clone()),
        ("OAUTH_REDIRECT_URI".to_owned(), CALLBACK.to_owned()),
    ];
    env.extend(fake.env("google"));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_on(db, &pairs).await;
    app.insert_user(clerk).await;
    connect(&app, &fake, &app.user_token(clerk, false), "google").await;
    let key = app
        .service_key(
            "mail-sync",
            &["tokens:read", "tokens:refresh", "users:read"],
        )
        .await;
    (app, fake, standby, replica_url, key)
}

async fn token_call(app: &TestApp, key: &str, route: &str, clerk: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/internal/tokens/{route}")))
        .header("x-api-key", key)
        .json(&json!({"user_id": clerk, "provider": "google"}))
        .send()
        .await
        .expect("request")
}

const ACTIVE_INTEGRATIONS: &str =
    "SELECT count(*) FROM integrations WHERE provider = $1 AND status = 'active'";

mod postgres {
    //! Postgres only: SQLite has no replicas.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_key_is_refused_while_the_replica_lags() {
        super::a_revoked_key_is_refused_while_the_replica_lags().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disconnected_integration_is_not_handed_out_while_the_replica_lags() {
        super::a_disconnected_integration_is_not_handed_out_while_the_replica_lags().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotated_refresh_token_is_read_from_the_primary() {
        super::a_rotated_refresh_token_is_read_from_the_primary().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ready_reports_the_replica_and_shutdown_closes_it() {
        super::ready_reports_the_replica_and_shutdown_closes_it().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_that_is_down_does_not_fail_readiness() {
        super::a_replica_that_is_down_does_not_fail_readiness().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_users_own_read_is_served_by_the_replica() {
        super::a_users_own_read_is_served_by_the_replica().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_admin_deleted_while_the_replica_lags_is_refused() {
        super::an_admin_deleted_while_the_replica_lags_is_refused().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_not_yet_on_the_replica_is_read_on_the_primary() {
        super::a_user_not_yet_on_the_replica_is_read_on_the_primary().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_that_goes_down_sends_reads_to_the_primary_until_it_is_back() {
        super::a_replica_that_goes_down_sends_reads_to_the_primary_until_it_is_back().await;
    }
}

async fn a_revoked_key_is_refused_while_the_replica_lags() {
    let (app, _fake, standby, replica_url, _key) = replica_app("user_rep1").await;
    let key = app.service_key("profile", &["users:read"]).await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    app.state
        .app()
        .revoke_service_key(&app::Ctx::system("test"), "profile")
        .await
        .expect("revoked");
    let revoked = "SELECT count(*) FROM service_keys WHERE name = $1 AND revoked_at IS NOT NULL";
    assert_eq!(
        standby.count(&replica_url, revoked, "profile").await,
        0,
        "the replica lags"
    );
    let res = app
        .client
        .get(app.url("/internal/users/user_rep1"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(
        standby.count(&replica_url, revoked, "profile").await,
        0,
        "still lagging"
    );
}

async fn a_disconnected_integration_is_not_handed_out_while_the_replica_lags() {
    let (app, _fake, standby, replica_url, key) = replica_app("user_rep2").await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    let res = app
        .client
        .delete(app.url("/users/me/integrations/google"))
        .bearer_auth(app.user_token("user_rep2", false))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(
        standby
            .count(&replica_url, ACTIVE_INTEGRATIONS, "google")
            .await,
        1,
        "the replica still has it active"
    );
    let res = token_call(&app, &key, "get", "user_rep2").await;
    assert_problem(res, 404, "not_found").await;
    assert_eq!(
        standby
            .count(&replica_url, ACTIVE_INTEGRATIONS, "google")
            .await,
        1,
        "still lagging"
    );
}

/// The fake rotates refresh tokens and refuses a replayed one (`invalid_grant`, as
/// Microsoft does): a second refresh that read the old one from the replica would end the
/// grant.
async fn a_rotated_refresh_token_is_read_from_the_primary() {
    let (app, fake, standby, replica_url, key) = replica_app("user_rep3").await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    for round in 0..2 {
        let res = token_call(&app, &key, "refresh", "user_rep3").await;
        assert_eq!(res.status(), 200, "refresh {round}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["refreshed"], true);
    }
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 2);
    let refreshed = "SELECT count(*) FROM integrations WHERE provider = $1 \
                     AND last_refreshed_at IS NOT NULL";
    assert_eq!(
        standby.count(&replica_url, refreshed, "google").await,
        0,
        "the replica never saw either refresh"
    );
}

async fn pg_connections_to(replica_url: &str) -> i64 {
    let name = replica_url.rsplit('/').next().expect("database name");
    let admin = std::env::var("TEST_REPLICA_URL").expect("TEST_REPLICA_URL");
    Standby::from_env()
        .count(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
        .await
}

async fn ready_reports_the_replica_and_shutdown_closes_it() {
    let (app, _fake, _standby, replica_url, _key) = replica_app("user_rep4").await;
    let body: Value = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database_replica"], "ok", "{body}");
    // A read that may lag opens a replica connection.
    let res = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(app.user_token("user_rep4", false))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert!(pg_connections_to(&replica_url).await > 0);
    // The last step of the server's shutdown (`startup::serve`), run while the app and its
    // database live on: the pool must be closed by it, not by being dropped (nor by the
    // test database's DROP DATABASE replicating to the standby).
    app.state.app().shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pg_connections_to(&replica_url).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica pool is still connected after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_replica_that_is_down_does_not_fail_readiness() {
    let db = TestDb::new(Backend::Postgres).await;
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let down = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let app = spawn_app_on(db, &[("DATABASE_READ_URL", &down)]).await;
    let res = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "the primary serves");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["database_replica"], "error", "{body}");
}

/// SQLite has no replicas: a replica URL with it stops the service at start, naming the
/// variable.
#[test]
fn a_replica_url_with_sqlite_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .arg("serve")
        .current_dir(dir.path())
        .env("DATABASE_URL", "sqlite://data/us.db")
        .env(
            "DATABASE_READ_URL",
            "postgres://postgres@127.0.0.1:1/replica",
        )
        .env("DATA_DIR", dir.path().join("data"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .output()
        .expect("binary runs");
    assert!(!out.status.success(), "the service must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_READ_URL") && stderr.contains("SQLite"),
        "{stderr}"
    );
    // Refused by the configuration check (exit 2), before any connection is tried.
    assert_exit(
        &out,
        2,
        "DATABASE_READ_URL: a read replica needs a Postgres DATABASE_URL",
    );
}

async fn me(app: &TestApp, clerk: &str, admin: bool) -> reqwest::Response {
    app.client
        .get(app.url("/users/me"))
        .bearer_auth(app.user_token(clerk, admin))
        .send()
        .await
        .expect("request")
}

async fn rename(app: &TestApp, clerk: &str, first_name: &str) {
    let res = app
        .client
        .patch(app.url("/users/me"))
        .bearer_auth(app.user_token(clerk, false))
        .json(&json!({ "first_name": first_name }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "rename");
}

async fn first_name(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["first_name"].clone()
}

const NAMED: &str = "SELECT count(*) FROM users WHERE first_name = $1";

/// A GET of the user's own profile is a read that may lag: with replay paused, the
/// replica answers it (the rename is not there yet), while the write went to the primary.
async fn a_users_own_read_is_served_by_the_replica() {
    let (app, _fake, standby, replica_url, _key) = replica_app("user_rep5").await;
    rename(&app, "user_rep5", "Before").await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    rename(&app, "user_rep5", "After").await;
    assert_eq!(standby.count(&replica_url, NAMED, "After").await, 0, "lags");
    assert_eq!(
        first_name(me(&app, "user_rep5", false).await).await,
        "Before"
    );
}

/// An admin's session is always decided on the primary: deleted there, refused at once,
/// though the lagging replica still shows the admin live.
async fn an_admin_deleted_while_the_replica_lags_is_refused() {
    let (app, _fake, standby, replica_url, _key) = replica_app("user_rep6").await;
    app.insert_user("user_adminrep6").await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    let res = app
        .client
        .delete(app.url("/users/me"))
        .bearer_auth(app.user_token("user_adminrep6", true))
        .send()
        .await
        .expect("request");
    let status = res.status();
    assert_eq!(status, 204, "{}", res.text().await.unwrap_or_default());
    let live = "SELECT count(*) FROM users WHERE clerk_user_id = $1 AND deleted_at IS NULL";
    assert_eq!(
        standby.count(&replica_url, live, "user_adminrep6").await,
        1,
        "lags"
    );
    let res = app
        .client
        .get(app.url("/users"))
        .bearer_auth(app.user_token("user_adminrep6", true))
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;
}

/// A user the replica has not received yet is read on the primary, not refused.
async fn a_user_not_yet_on_the_replica_is_read_on_the_primary() {
    let (app, _fake, standby, replica_url, _key) = replica_app("user_rep7").await;
    standby.catch_up().await;
    let _paused = standby.pause().await;
    app.insert_user("user_rep7new").await;
    let known = "SELECT count(*) FROM users WHERE clerk_user_id = $1";
    assert_eq!(standby.count(&replica_url, known, "user_rep7new").await, 0);
    let res = me(&app, "user_rep7new", false).await;
    assert_eq!(res.status(), 200);
}

/// The acquire timeout of the outage test below (`DATABASE_ACQUIRE_TIMEOUT_MS`).
const ACQUIRE_MS: u64 = 3000;

/// The replica behind a proxy that refuses connections: the first read that may lag
/// waits for it, fails, marks it down and is answered by the primary; later reads go
/// straight to the primary (each well inside the acquire timeout it would otherwise wait
/// out). Once the proxy forwards again, the probe brings the replica back: a rename made
/// while replay is paused is then not seen, because the replica answers again.
async fn a_replica_that_goes_down_sends_reads_to_the_primary_until_it_is_back() {
    let standby = Standby::from_env();
    let db = TestDb::new(Backend::Postgres).await;
    let (proxy, replica_url) = testkit::FaultProxy::for_url(&standby.url_of(&db).await).await;
    let acquire = ACQUIRE_MS.to_string();
    let app = spawn_app_on(
        db,
        &[
            ("DATABASE_READ_URL", &replica_url),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", &acquire),
        ],
    )
    .await;
    app.insert_user("user_rep8").await;
    rename(&app, "user_rep8", "Before").await;
    proxy.refuse();
    assert_eq!(
        first_name(me(&app, "user_rep8", false).await).await,
        "Before"
    );
    for round in 0..5 {
        let started = std::time::Instant::now();
        assert_eq!(
            first_name(me(&app, "user_rep8", false).await).await,
            "Before"
        );
        assert!(
            started.elapsed() < Duration::from_millis(ACQUIRE_MS),
            "read {round} waited for the replica that is down: {:?}",
            started.elapsed()
        );
    }
    proxy.restore();
    standby.catch_up().await;
    let _paused = standby.pause().await;
    rename(&app, "user_rep8", "After").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while first_name(me(&app, "user_rep8", false).await).await != "Before" {
        assert!(
            std::time::Instant::now() < deadline,
            "reads never went back to the replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
