//! `spawn_app()`: the real application on port 0 against a fresh database.

use std::net::SocketAddr;

use sea_orm::EntityTrait;
use server::{config::Config, startup::Application};
pub use testkit::{Backend, TestDb};

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The separate metrics listener, when `METRICS_ADDR` was set.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: server::http::AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the database outlives the server.
    pub db: TestDb,
}

impl TestApp {
    /// Inserts an active user row with Clerk id `clerk` (no webhook needed); returns its id.
    pub async fn insert_user(&self, clerk: &str) -> uuid::Uuid {
        testkit::fixtures::user(clerk)
            .email(&format!("{clerk}@example.com"))
            .insert(self.state.app().test_db().writer())
            .await
    }

    /// `(action, actor_type, actor_id)` of every audit entry about user `id`, oldest first.
    pub async fn audit_of(
        &self,
        id: impl Into<uuid::Uuid>,
    ) -> Vec<(String, String, Option<String>)> {
        let f = testkit::store::audit::AuditFilter {
            user_id: Some(domain::UserId::from_uuid(id.into())),
            ..testkit::store::audit::AuditFilter::default()
        };
        let mut v: Vec<_> =
            testkit::store::audit::list(self.state.app().test_db().writer(), &f, 100)
                .await
                .expect("audit")
                .into_iter()
                .map(|e| (e.action, e.actor_type, e.actor_id))
                .collect();
        v.reverse();
        v
    }

    /// `(token rows, OAuth state rows, integration statuses)` of user `id`.
    pub async fn credentials_of(&self, id: impl Into<uuid::Uuid>) -> (usize, usize, Vec<String>) {
        use testkit::store::entities::{integration_tokens, integrations, oauth_states};
        let id = id.into();
        let db = self.state.app().test_db().writer();
        let tokens = integration_tokens::Entity::find()
            .all(db)
            .await
            .expect("tokens");
        let states = oauth_states::Entity::find().all(db).await.expect("states");
        let integ = integrations::Entity::find()
            .all(db)
            .await
            .expect("integrations");
        (
            tokens.iter().filter(|t| t.user_id == id).count(),
            states.iter().filter(|s| s.user_id == id).count(),
            integ
                .into_iter()
                .filter(|i| i.user_id == id)
                .map(|i| i.status)
                .collect(),
        )
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` with a session token; the JSON body, whatever the status.
    pub async fn get_json(&self, path: &str, bearer: &str) -> serde_json::Value {
        self.client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body")
    }

    /// A session token this app accepts: test apps run local development auth (no
    /// `CLERK_JWKS_URL`), with the signing key under the test's data folder. With `admin`,
    /// the claim at `ADMIN_ROLE_CLAIM` is `admin`.
    pub fn user_token(&self, sub: &str, admin: bool) -> String {
        self.state
            .auth()
            .dev_key()
            .expect("test apps run local development auth")
            .session_token(sub, admin, 3600, &self.state.config().admin_role_claim)
            .expect("token is signed")
    }

    /// A new service key with `permissions`, created through the app use case; returns the
    /// plaintext key.
    pub async fn service_key(&self, name: &str, permissions: &[&str]) -> String {
        self.state
            .app()
            .create_service_key(&app::Ctx::system("test"), name, permissions)
            .await
            .expect("service key is created")
            .key
            .expose_secret()
            .to_owned()
    }

    /// The right to act for the live user `clerk`, as that user's own session mints it.
    pub async fn owner(&self, clerk: &str) -> app::access::AsOwner {
        let claims = app::users::session::SessionClaims {
            clerk_user_id: domain::user::ClerkUserId::parse(clerk).expect("a Clerk id"),
            admin: false,
        };
        let app::users::session::SessionUser::Live { caller, user } = self
            .state
            .app()
            .session_user(
                claims,
                app::RequestMeta::default(),
                app::users::session::SessionRead::Current,
            )
            .await
            .expect("session")
        else {
            panic!("{clerk} is not a live user");
        };
        caller
            .as_owner(
                app::users::id_of(&user),
                &user.clerk_user_id,
                app::RequestMeta::default(),
            )
            .expect("its own user")
    }

    /// The admin right of a new service key with `admin`, as verifying the key mints it.
    pub async fn admin_key_holder(&self) -> app::access::AsAdmin {
        static KEYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = self.service_key(&format!("ops{n}"), &["admin"]).await;
        let verified = self
            .state
            .app()
            .verify_service_key(&key)
            .await
            .expect("lookup")
            .expect("verified");
        app::access::Caller::from(verified)
            .as_admin(app::RequestMeta::default())
            .expect("an admin key")
    }

    /// Sends the shutdown signal and waits for the server to finish draining.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }
}

impl TestApp {
    /// Stops the in-process server (drained, audit flushed, pools closed) and hands back its
    /// database, so the real binary can be started on it (same data folder, same keys).
    pub async fn stop(self) -> TestDb {
        let Self {
            shutdown,
            server,
            db,
            ..
        } = self;
        if let Some(tx) = shutdown {
            let _ = tx.send(());
        }
        // Serving ends with `App::shutdown`: the audit writer flushed, the pools closed.
        if let Some(h) = server {
            let _ = h.await;
        }
        db
    }
}

/// Test configuration: the given database, port 0, a private data folder, and `extra`
/// environment on top.
pub fn test_config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        ("DATABASE_URL".to_owned(), db.url().to_owned()),
        ("LISTEN_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "DATA_DIR".to_owned(),
            db.dir().join("data").display().to_string(),
        ),
        // Tests drive jobs with `state.jobs().run_until_idle()`, never a background worker.
        ("JOBS_WORKER".to_owned(), "false".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Config::load(None, env).expect("test configuration is valid")
}

/// Starts the application on `backend` with default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Starts the application with extra environment settings.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDb::new(backend).await, extra).await
}

/// Starts the application on a database the test prepared (e.g. a schema from another
/// release), with extra environment settings.
pub async fn spawn_app_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    let config = test_config(&db, extra);
    let application = Application::build(config)
        .await
        .expect("application starts");
    let addr = application.local_addr().expect("bound address");
    let metrics_addr = application.metrics_addr();
    let state = application.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::new(),
        state,
        shutdown: Some(tx),
        server: Some(server),
        db,
    }
}

/// A second instance of an app on the same database and data folder (so the same
/// development keyring): another replica.
pub struct Replica {
    pub addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Replica {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl TestApp {
    /// Starts another replica of this app (same database, same keys) with `extra`.
    pub async fn spawn_replica(&self, extra: &[(&str, &str)]) -> Replica {
        let config = test_config(&self.db, extra);
        let application = Application::build(config).await.expect("replica starts");
        let addr = application.local_addr().expect("bound address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        }));
        Replica {
            addr,
            _shutdown: tx,
        }
    }
}

/// Starts the application with extra environment settings and `routes` merged behind the
/// real middleware stack (`server::http::router_with`): for exercising extractors through
/// test-only routes before real routes exist.
pub async fn spawn_app_with_routes(
    backend: Backend,
    extra: &[(&str, &str)],
    routes: axum::Router<server::http::AppState>,
) -> TestApp {
    let db = TestDb::new(backend).await;
    let config = test_config(&db, extra);
    let application = Application::build(config)
        .await
        .expect("application starts");
    let state = application.state().clone();
    // Serve the extended router on a fresh listener; the application's own is dropped.
    drop(application);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound address");
    let router = server::http::router_with(state.clone(), routes);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::startup::serve(
        listener,
        router,
        state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    TestApp {
        addr,
        metrics_addr: None,
        client: reqwest::Client::new(),
        state,
        shutdown: Some(tx),
        server: Some(server),
        db,
    }
}

/// Asserts that a run of the binary failed as expected: `code` is what `main` returns for
/// this kind of error (1 for a failed command, 2 for a configuration error) and `needle` a
/// stable part of its `user-service: …` line on stderr. Returns stderr.
pub fn assert_exit(out: &std::process::Output, code: i32, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr names the failure ({needle:?}): {stderr}"
    );
    stderr
}

/// Asserts a problem+json answer of the given status and type; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, kind: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let rid = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: serde_json::Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body["request_id"],
        rid.as_str(),
        "request id in body and header: {body}"
    );
    assert!(
        body["title"].is_string() && body["timestamp"].is_string() && body["instance"].is_string(),
        "{body}"
    );
    body
}
