//! The sign-up race and `dev user create`: a user whose session arrives before Clerk's
//! `user.created` webhook is fetched from a local stand-in of Clerk's Backend API and
//! created once, as the webhook would; the later webhook changes nothing.

// The stand-in of Clerk is not our edge: axum's own `Path` extractor is fine there.
#![allow(clippy::disallowed_types)]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_exit, assert_problem, spawn_app_with},
    dev_auth::run_cli,
    webhooks::{SECRET_A, deliver, user, user_event, whsec},
};

both_backends!(
    racing_sessions_of_a_new_user_create_it_once,
    a_user_clerk_does_not_know_is_not_found,
    clerk_unreachable_is_unavailable,
    without_a_secret_key_clerk_is_not_asked,
    a_user_deleted_here_is_not_brought_back,
    dev_user_create_makes_a_user_the_dev_token_reaches,
);

const SECRET_KEY: &str = "sk_test_stand_in_secret_key_value";
const NEW_USER: &str = "user_2newcomer";

/// Clerk's `GET /v1/users/{id}`, checking the secret key; `status` overrides the answer.
#[derive(Clone)]
struct FakeClerk {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Clerk {
    calls: Arc<AtomicUsize>,
    status: Option<StatusCode>,
}

async fn get_user(State(c): State<Clerk>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    c.calls.fetch_add(1, Ordering::SeqCst);
    // Wide enough that racing requests all miss the user before the first one stores it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {SECRET_KEY}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(s) = c.status {
        return s.into_response();
    }
    if id != NEW_USER {
        let body = json!({"errors": [{"code": "resource_not_found"}]});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    Json(user_event("user.created", &id, "Ada", 1_700_000_000_000)["data"].clone()).into_response()
}

impl FakeClerk {
    async fn start(status: Option<StatusCode>) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route("/v1/users/{id}", get(get_user))
            .with_state(Clerk {
                calls: calls.clone(),
                status,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, calls }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn spawn_with_clerk(backend: Backend, api_url: &str) -> TestApp {
    spawn_app_with(
        backend,
        &[
            ("CLERK_SECRET_KEY", SECRET_KEY),
            ("CLERK_API_URL", api_url),
            ("CLERK_WEBHOOK_SECRET", &whsec(SECRET_A)),
        ],
    )
    .await
}

async fn me(app: &TestApp, sub: &str) -> reqwest::Response {
    app.client
        .get(app.url("/users/me"))
        .bearer_auth(app.user_token(sub, false))
        .send()
        .await
        .expect("request")
}

async fn racing_sessions_of_a_new_user_create_it_once(backend: Backend) {
    let clerk = FakeClerk::start(None).await;
    let app = spawn_with_clerk(backend, &clerk.url()).await;
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = app
            .client
            .get(app.url("/users/me"))
            .bearer_auth(app.user_token(NEW_USER, false));
        racing.spawn(async move { request.send().await.expect("request") });
    }
    let mut ids = Vec::new();
    for res in racing.join_all().await {
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        // Clerk's primary address, with its domain lower-cased as every stored email is.
        assert_eq!(body["email"], "Ada@example.com");
        assert_eq!(body["first_name"], "Ada");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every racing request sees the same user");
    assert!(clerk.calls() >= 1);

    let stored = user(&app, NEW_USER).await.expect("stored");
    let created = (
        "user.created".to_owned(),
        "user".to_owned(),
        Some(NEW_USER.to_owned()),
    );
    assert_eq!(app.audit_of(stored.id).await, vec![created.clone()]);
    let events = testkit::store::events::for_user(app.state.app().test_db().writer(), stored.id)
        .await
        .expect("events");
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["user.created"]);

    // The webhook that arrives afterwards is a no-op: no second user, entry or event.
    let status = deliver(
        &app,
        "msg_late",
        &user_event("user.created", NEW_USER, "Ada", 1_700_000_000_000),
    )
    .await;
    assert_eq!(status, "processed");
    assert_eq!(app.audit_of(stored.id).await, vec![created]);
    let events = testkit::store::events::for_user(app.state.app().test_db().writer(), stored.id)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    // Known now: Clerk is not asked again.
    let calls = clerk.calls();
    assert_eq!(me(&app, NEW_USER).await.status(), 200);
    assert_eq!(clerk.calls(), calls);
}

async fn a_user_clerk_does_not_know_is_not_found(backend: Backend) {
    let clerk = FakeClerk::start(None).await;
    let app = spawn_with_clerk(backend, &clerk.url()).await;
    assert_problem(me(&app, "user_2unknown").await, 404, "not_found").await;
    assert_eq!(clerk.calls(), 1);
    assert!(user(&app, "user_2unknown").await.is_none());
}

async fn clerk_unreachable_is_unavailable(backend: Backend) {
    // Nothing listens here.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = spawn_with_clerk(backend, &url).await;
    let res = me(&app, NEW_USER).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "service_unavailable").await;
    assert!(user(&app, NEW_USER).await.is_none());

    // Clerk answering with an error is the same for our caller: try again later.
    let failing = FakeClerk::start(Some(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let app = spawn_with_clerk(backend, &failing.url()).await;
    assert_problem(me(&app, NEW_USER).await, 503, "service_unavailable").await;
    assert!(user(&app, NEW_USER).await.is_none());
}

async fn without_a_secret_key_clerk_is_not_asked(backend: Backend) {
    let clerk = FakeClerk::start(None).await;
    let app = spawn_app_with(backend, &[("CLERK_API_URL", &clerk.url())]).await;
    assert_problem(me(&app, NEW_USER).await, 404, "not_found").await;
    assert_eq!(clerk.calls(), 0);
}

async fn a_user_deleted_here_is_not_brought_back(backend: Backend) {
    let clerk = FakeClerk::start(None).await;
    let app = spawn_with_clerk(backend, &clerk.url()).await;
    assert_eq!(me(&app, NEW_USER).await.status(), 200);
    let res = app
        .client
        .delete(app.url("/users/me"))
        .bearer_auth(app.user_token(NEW_USER, false))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let calls = clerk.calls();
    // A deleted account's session holds no authority (docs/security.md), and Clerk, which
    // still knows the user, is not asked to bring it back.
    assert_problem(me(&app, NEW_USER).await, 403, "forbidden").await;
    assert_eq!(clerk.calls(), calls, "a deleted user is not fetched again");
}

async fn dev_user_create_makes_a_user_the_dev_token_reaches(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    assert_problem(me(&app, "user_123").await, 404, "not_found").await;
    let args = [
        "dev",
        "user",
        "create",
        "--sub",
        "user_123",
        "--email",
        "ada@example.com",
    ];
    let out = run_cli(&app, &args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the user as JSON");
    assert_eq!(printed["clerk_user_id"], "user_123");

    let res = me(&app, "user_123").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["id"], printed["id"]);
    let id = uuid::Uuid::parse_str(body["id"].as_str().expect("id")).expect("uuid");
    let created = (
        "user.created".to_owned(),
        "system".to_owned(),
        Some("cli".to_owned()),
    );
    assert_eq!(app.audit_of(id).await, vec![created.clone()]);

    // Again: the same user, unchanged, and a note saying so.
    let out = run_cli(&app, &args, &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    assert_eq!(app.audit_of(id).await, vec![created]);

    // Bad input and Clerk mode are refused, naming the problem.
    let out = run_cli(
        &app,
        &[
            "dev", "user", "create", "--sub", "user_9", "--email", "nope",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email"));
    assert_exit(
        &out,
        1,
        "user-service: --email must be a valid email address",
    );
    let clerk_mode = [
        (
            "CLERK_JWKS_URL",
            "https://clerk.example.com/.well-known/jwks.json",
        ),
        ("CLERK_ISSUER", "https://clerk.example.com"),
    ];
    let out = run_cli(
        &app,
        &[
            "dev", "user", "create", "--sub", "user_9", "--email", "a@b.co",
        ],
        &clerk_mode,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLERK_JWKS_URL is set"));
    assert_exit(
        &out,
        1,
        "user-service: dev user create is refused: CLERK_JWKS_URL is set",
    );
    assert!(user(&app, "user_9").await.is_none());
}
