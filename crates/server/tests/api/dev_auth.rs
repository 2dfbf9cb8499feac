//! Local development auth: the binary's `dev token` output is accepted by a running
//! development service, whose JWKS is served at `/.well-known/jwks.json`.

use std::{process::Stdio, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;
use testkit::{Backend, both_backends};

use crate::{
    auth::probe_routes,
    common::{TestApp, assert_exit, assert_problem, spawn_app_with, spawn_app_with_routes},
};

/// Runs the real binary with the test app's database and data folder.
pub fn run_cli(app: &TestApp, args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_user-service"));
    cmd.args(args)
        .env("DATABASE_URL", app.db.url())
        .env(
            "DATA_DIR",
            app.state.config().data_dir.display().to_string(),
        )
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "text");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

fn stdout_line(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_owned()
}

async fn dev_token_from_the_binary_is_accepted(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    // A session speaks only for a user the service knows (docs/security.md).
    for sub in ["user_123", "user_456", "user_789"] {
        app.insert_user(sub).await;
    }
    let out = run_cli(&app, &["dev", "token", "--sub", "user_123", "--admin"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout_line(&out);
    let res = app
        .client
        .get(app.url("/test/admin"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["sub"], "user_123");
    assert_eq!(body["admin"], true);

    let out = run_cli(
        &app,
        &["dev", "token", "--sub", "user_456", "--ttl-seconds", "60"],
        &[],
    );
    let plain = stdout_line(&out);
    let res = app
        .client
        .get(app.url("/test/admin"))
        .bearer_auth(&plain)
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;

    // The JWKS holds the key that signed the token.
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let jwks: JwkSet = res.json().await.expect("jwks");
    let kid = jsonwebtoken::decode_header(&token)
        .expect("header")
        .kid
        .expect("kid");
    assert!(jwks.find(&kid).is_some());
    // And the helper other tests use mints tokens the same app accepts.
    let res = app
        .client
        .get(app.url("/test/whoami"))
        .bearer_auth(app.user_token("user_789", false))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);

    // Refused when Clerk is configured, and for a sub that is not a Clerk id.
    let out = run_cli(
        &app,
        &["dev", "token", "--sub", "user_123"],
        &[
            (
                "CLERK_JWKS_URL",
                "https://clerk.example.test/.well-known/jwks.json",
            ),
            ("CLERK_ISSUER", "https://clerk.example.test"),
        ],
    );
    assert!(!out.status.success());
    assert_exit(
        &out,
        1,
        "user-service: dev token is refused: CLERK_JWKS_URL is set",
    );
    // stdout carries log lines (the error), never a token.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("eyJ"),
        "no token printed"
    );
    let out = run_cli(&app, &["dev", "token", "--sub", "root"], &[]);
    assert!(!out.status.success());
    assert_exit(&out, 1, "user-service: --sub must start with user_");
}

async fn jwks_is_absent_when_clerk_is_configured(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            // Nothing listens there: startup logs the failed fetch and carries on.
            ("CLERK_JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json"),
            ("CLERK_ISSUER", "https://clerk.example.test"),
        ],
    )
    .await;
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
}

both_backends!(
    dev_token_from_the_binary_is_accepted,
    jwks_is_absent_when_clerk_is_configured
);

/// The real binary with nothing configured: warns that development auth is on, serves its
/// JWKS, and `dev token` signs with that key. Service keys sent to it never reach its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_development_auth() {
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let bin = env!("CARGO_BIN_EXE_user-service");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = tokio::process::Command::new(bin)
        .current_dir(dir.path())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::from(log))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..150 {
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
    assert!(up, "service became ready");
    let key_file = dir.path().join("data/dev-signing-key.pem");
    assert!(key_file.exists());

    let jwks: JwkSet = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("jwks");
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["dev", "token", "--sub", "user_123"])
        .output()
        .expect("dev token");
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let kid = jsonwebtoken::decode_header(&token)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = jwks
        .find(&kid)
        .expect("the token's key is in the served JWKS");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&["user-service-dev"]);
    let claims =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).expect("key"), &v)
            .expect("the token verifies against the served JWKS")
            .claims;
    assert_eq!(claims["sub"], "user_123");
    assert!(claims["sid"].is_string());

    // A service key created by the CLI and sent in each accepted form stays out of the log.
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args([
            "service-key",
            "create",
            "--name",
            "ops",
            "--permissions",
            "users:read",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("service-key create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("usk_"))
        .expect("key printed")
        .to_owned();
    for (name, value) in [
        ("x-api-key", key.clone()),
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("ApiKey {key}")),
    ] {
        let res = client
            .get(format!("{base}/health"))
            .header(name, value)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
    }
    let _ = client
        .get(format!("{base}/health"))
        .bearer_auth(&token)
        .send()
        .await;
    let _ = child.kill().await;
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("DEVELOPMENT AUTH IS ON")),
        "startup warns about development auth:\n{log}"
    );
    assert!(!log.contains(&key), "the service key is logged");
    assert!(!log.contains(&key[4..]), "the service key is logged");
    assert!(!log.contains(&token), "the session token is logged");
}
