//! Least-privilege service keys (docs/security.md "Service-key limits"): providers and a
//! scope ceiling on token requests (403, audited as denied), expiry (401 like an unknown
//! key, listed as expired) and rotation with a grace period, through the HTTP API and the
//! binary's `service-key` commands.

use std::time::Duration;

use app::{Ctx, service_keys::KeyOptions};
use chrono::Utc;
use domain::duration::Span;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    auth::probe_routes,
    common::{Backend, TestApp, assert_exit, assert_problem, spawn_app_with_routes},
    connected::{app_with, connect, token_call},
    dev_auth::run_cli,
    fake_provider::FakeProvider,
};

both_backends!(
    token_requests_outside_a_keys_limits_are_forbidden_and_audited,
    expired_keys_are_refused_like_unknown_ones,
    rotated_keys_keep_the_old_secret_for_the_grace_only,
    cli_creates_limited_keys_rotates_and_lists_them,
);

/// A token key limited to `providers` and the scope ceiling `scopes` (empty: no limit).
pub async fn limited_key(
    app: &TestApp,
    name: &str,
    providers: &[&str],
    scopes: &[String],
) -> String {
    let options = KeyOptions {
        providers: providers.iter().map(|p| (*p).to_owned()).collect(),
        scopes: scopes.to_vec(),
        expires_in: None,
    };
    let created = app
        .state
        .app()
        .create_limited_service_key(
            &Ctx::system("test"),
            name,
            &["tokens:read", "tokens:refresh"],
            options,
        )
        .await
        .expect("created");
    created.key.expose_secret().to_owned()
}

async fn status_of(app: &TestApp, key: &str) -> u16 {
    app.client
        .get(app.url("/test/tokens"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn token_requests_outside_a_keys_limits_are_forbidden_and_audited(backend: Backend) {
    let fake = FakeProvider::start().await;
    let app = app_with(backend, &fake, &["google", "microsoft"]).await;
    app.insert_user("user_lim").await;
    let session = app.user_token("user_lim", false);
    connect(&app, &fake, &session, "google").await;
    let google = json!({"user_id": "user_lim", "provider": "google"});

    // An unlimited key (as every key made before limits) gets the token as before.
    let open = app.service_key("open", &["tokens:read"]).await;
    let res = token_call(&app, &open, "get", google.clone()).await;
    assert_eq!(res.status(), 200);
    let granted: Vec<String> =
        serde_json::from_value(res.json::<Value>().await.expect("json")["scopes"].clone())
            .expect("scopes");
    assert!(
        granted.len() >= 2,
        "the fake grants several scopes: {granted:?}"
    );

    // A provider outside the key's list: 403 on both routes, and for an unknown user too
    // (a key cannot probe for users beyond its limits).
    let ms = limited_key(&app, "ms-only", &["microsoft"], &[]).await;
    for route in ["get", "refresh"] {
        let res = token_call(&app, &ms, route, google.clone()).await;
        let body = assert_problem(res, 403, "forbidden").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("google"),
            "{body}"
        );
    }
    let nobody = json!({"user_id": "user_nobody", "provider": "google"});
    assert_problem(token_call(&app, &ms, "get", nobody).await, 403, "forbidden").await;

    // A ceiling of one granted scope: that scope may be asked for; anything beyond is 403
    // (even a scope the token lacks: the ceiling is checked first); a request naming no
    // scopes takes the token as it is, which carries more than the ceiling: 403.
    let ceiling = vec![granted[0].clone()];
    let mailer = limited_key(&app, "mailer", &["google"], &ceiling).await;
    let within = json!({"user_id": "user_lim", "provider": "google", "scopes": ceiling});
    assert_eq!(token_call(&app, &mailer, "get", within).await.status(), 200);
    let beyond = json!({"user_id": "user_lim", "provider": "google",
        "scopes": [granted[0], "https://mail.test/read"]});
    let body = assert_problem(
        token_call(&app, &mailer, "get", beyond).await,
        403,
        "forbidden",
    )
    .await;
    assert!(body.get("missing_scopes").is_none(), "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("https://mail.test/read")
    );
    for route in ["get", "refresh"] {
        let res = token_call(&app, &mailer, route, google.clone()).await;
        assert_problem(res, 403, "forbidden").await;
    }
    // A ceiling holding everything the token carries: the token as it is.
    let mut wide_ceiling = granted.clone();
    wide_ceiling.push("https://mail.test/read".to_owned());
    let wide = limited_key(&app, "wide", &[], &wide_ceiling).await;
    assert_eq!(
        token_call(&app, &wide, "get", google.clone())
            .await
            .status(),
        200
    );

    // Each refusal about the user is a `token.accessed` entry, outcome `denied`, by the
    // calling key; the grants are `success`.
    app.state.app().access_log().flush().await;
    let audit = app.get_json("/users/me/audit?limit=100", &session).await;
    let accessed: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "token.accessed")
        .collect();
    let by = |actor: &str, outcome: &str| {
        accessed
            .iter()
            .filter(|e| e["actor_id"] == actor && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(by("ms-only", "denied"), 2, "{accessed:?}");
    assert_eq!(by("mailer", "denied"), 3, "{accessed:?}");
    assert_eq!(by("mailer", "success"), 1, "{accessed:?}");
    assert_eq!(by("wide", "success"), 1, "{accessed:?}");
    assert!(
        accessed
            .iter()
            .filter(|e| e["outcome"] == "denied")
            .all(|e| e["details"]["error"] == "forbidden"),
        "{accessed:?}"
    );

    // Limits are validated when the key is made.
    let bad = app
        .state
        .app()
        .create_limited_service_key(
            &Ctx::system("test"),
            "bad",
            &["tokens:read"],
            KeyOptions {
                providers: vec!["nope".to_owned()],
                ..KeyOptions::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(app::AppError::Validation(_))), "{bad:?}");
    app.shutdown().await.expect("clean shutdown");
}

/// Moves the `expires_at` of the named key to `seconds` from now.
async fn set_expiry(app: &TestApp, name: &str, seconds: i64) {
    use testkit::store::entities::service_keys::{Column, Entity};
    Entity::update_many()
        .col_expr(
            Column::ExpiresAt,
            Expr::value(Utc::now() + chrono::Duration::seconds(seconds)),
        )
        .filter(Column::Name.eq(name))
        .exec(app.state.app().test_db().writer())
        .await
        .expect("update");
}

/// Sleeps until `t` has passed (plus a little).
async fn sleep_past(t: chrono::DateTime<Utc>) {
    let left = (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(50)).await;
}

async fn expired_keys_are_refused_like_unknown_ones(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let ctx = Ctx::system("test");
    let short = app
        .state
        .app()
        .create_limited_service_key(
            &ctx,
            "short",
            &["tokens:read"],
            KeyOptions {
                expires_in: Some(Span::from_secs(2)),
                ..KeyOptions::default()
            },
        )
        .await
        .expect("created");
    let key = short.key.expose_secret().to_owned();
    let expires_at = short.info.expires_at.expect("an expiry");
    assert_eq!(status_of(&app, &key).await, 200, "valid, and now cached");
    // The cached copy knows its expiry: refused without a lookup once it has passed.
    sleep_past(expires_at).await;
    let res = app
        .client
        .get(app.url("/test/tokens"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "unauthorized").await;

    // A key that expired before any use: refused by the lookup.
    let never = app.service_key("never-used", &["tokens:read"]).await;
    set_expiry(&app, "never-used", -1).await;
    assert_eq!(status_of(&app, &never).await, 401);

    // Listed as expired; a zero lifetime is refused.
    let now = Utc::now();
    let listed = app.state.app().list_service_keys().await.expect("list");
    for name in ["short", "never-used"] {
        let k = listed.iter().find(|k| k.name == name).expect("listed");
        assert_eq!(k.status(now).as_str(), "expired", "{name}");
    }
    let zero = app
        .state
        .app()
        .create_limited_service_key(
            &ctx,
            "zero",
            &["tokens:read"],
            KeyOptions {
                expires_in: Some(Span::from_secs(0)),
                ..KeyOptions::default()
            },
        )
        .await;
    assert!(
        matches!(zero, Err(app::AppError::Validation(_))),
        "{zero:?}"
    );
}

async fn rotated_keys_keep_the_old_secret_for_the_grace_only(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let ctx = Ctx::system("cli");
    let first = app.service_key("rot", &["tokens:read"]).await;
    assert_eq!(
        status_of(&app, &first).await,
        200,
        "cached before the rotation"
    );

    let rotated = app
        .state
        .app()
        .rotate_service_key(&ctx, "rot", Span::from_secs(2))
        .await
        .expect("rotated");
    let second = rotated.key.expose_secret().to_owned();
    assert_ne!(second, first);
    assert!(second.starts_with(&rotated.info.prefix));
    assert_eq!(status_of(&app, &second).await, 200, "the new secret works");
    assert_eq!(
        status_of(&app, &first).await,
        200,
        "the old one, during the grace"
    );
    sleep_past(rotated.old_valid_until).await;
    assert_eq!(
        status_of(&app, &first).await,
        401,
        "the old one, after the grace"
    );
    assert_eq!(status_of(&app, &second).await, 200);

    // No grace: the old secret stops at once; only one previous secret is ever kept.
    let third = app
        .state
        .app()
        .rotate_service_key(&ctx, "rot", Span::from_secs(0))
        .await
        .expect("rotated again");
    let third = third.key.expose_secret().to_owned();
    assert_eq!(status_of(&app, &second).await, 401);
    assert_eq!(status_of(&app, &first).await, 401);
    assert_eq!(status_of(&app, &third).await, 200);

    // A revoked or unknown key is not rotated.
    app.state
        .app()
        .revoke_service_key(&ctx, "rot")
        .await
        .expect("revoked");
    assert_eq!(status_of(&app, &third).await, 401);
    for name in ["rot", "never-existed"] {
        let res = app
            .state
            .app()
            .rotate_service_key(&ctx, name, Span::from_secs(60))
            .await;
        assert!(matches!(res, Err(app::AppError::NotFound(_))), "{res:?}");
    }

    // Both rotations are audited, with prefixes only.
    let entries = testkit::store::audit::list(
        app.state.app().test_db().reader(),
        &testkit::store::audit::AuditFilter::default(),
        100,
    )
    .await
    .expect("audit");
    let rotations: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "service_key.rotated")
        .collect();
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert!(
        rotations
            .iter()
            .all(|e| e.resource_id.as_deref() == Some("rot"))
    );
    let all = format!("{entries:?}");
    for k in [&first, &second, &third] {
        assert!(!all.contains(&k[4..]), "no secret in the audit log");
    }
}

fn printed_key(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("usk_"))
        .expect("key printed")
        .to_owned()
}

/// Polls until `key` gets `status` (another process's change takes up to 2 s).
async fn eventually(app: &TestApp, key: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while status_of(app, key).await != status {
        assert!(tokio::time::Instant::now() < deadline, "never {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cli_creates_limited_keys_rotates_and_lists_them(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let create = |name: &'static str, extra: &[&'static str]| {
        let mut args = vec!["service-key", "create", "--name", name];
        args.extend(["--permissions", "tokens:read"]);
        args.extend(extra);
        run_cli(&app, &args, &[])
    };
    let out = create(
        "mailer",
        &[
            "--providers",
            "google",
            "--scopes",
            "https://mail.test/send,email",
            "--expires-in",
            "90d",
        ],
    );
    let first = printed_key(&out);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("providers google") && note.contains("expiring"),
        "{note}"
    );
    assert_eq!(status_of(&app, &first).await, 200);

    // Bad input exits non-zero, naming it.
    assert_exit(
        &create("x", &["--expires-in", "1y"]),
        2,
        "is not a duration",
    );
    assert_exit(
        &create("x", &["--providers", "nope"]),
        1,
        r#"user-service: providers unknown provider "nope""#,
    );
    assert_exit(
        &run_cli(&app, &["service-key", "rotate", "never-existed"], &[]),
        1,
        "user-service: service key not found",
    );

    // Rotated by another process without grace: the running service, which has the old
    // secret cached, refuses it within 2 s; the new one works.
    let out = run_cli(
        &app,
        &["service-key", "rotate", "mailer", "--grace", "0s"],
        &[],
    );
    let second = printed_key(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be shown again"));
    eventually(&app, &first, 401).await;
    assert_eq!(status_of(&app, &second).await, 200);
    // With the default grace (24 h) the old secret goes on working, and the listing says
    // until when.
    let third = printed_key(&run_cli(&app, &["service-key", "rotate", "mailer"], &[]));
    assert_eq!(status_of(&app, &third).await, 200);
    assert_eq!(status_of(&app, &second).await, 200);

    let old = printed_key(&create("old", &[]));
    set_expiry(&app, "old", -60).await;
    let out = run_cli(&app, &["service-key", "list"], &[]);
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let header = listing.lines().next().expect("header");
    let columns: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "NAME",
            "PREFIX",
            "PERMISSIONS",
            "PROVIDERS",
            "SCOPES",
            "CREATED",
            "LAST USED",
            "EXPIRES",
            "STATUS",
            "GRACE UNTIL",
            "REVOKED"
        ],
        "{header}"
    );
    let line = |name: &str| -> Vec<String> {
        listing
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .expect("listed")
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let mailer = line("mailer");
    assert_eq!(mailer[1], third[..12], "the current secret's prefix");
    assert_eq!(mailer[3], "google");
    assert_eq!(mailer[4], "email,https://mail.test/send");
    assert_ne!(mailer[6], "-", "last use");
    assert!(mailer[7].starts_with("20"), "expiry: {mailer:?}");
    assert_eq!(mailer[8], "active");
    assert!(mailer[9].starts_with("20"), "grace: {mailer:?}");
    assert_eq!(mailer[10], "-");
    let old_line = line("old");
    assert_eq!(&old_line[3..5], ["-", "-"], "no limits");
    assert_eq!(old_line[8], "expired");
    assert_eq!(status_of(&app, &old).await, 401);
    for k in [&first, &second, &third, &old] {
        assert!(!listing.contains(&k[4..]), "{listing}");
    }
}
