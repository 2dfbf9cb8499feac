//! Service keys: the three header forms, permissions (403), revocation (401), the CLI, and
//! that the key never shows up where it should not.

use sha2::{Digest, Sha256};
use testkit::{Backend, both_backends};

use crate::{
    auth::probe_routes,
    common::{TestApp, assert_exit, assert_problem, spawn_app_with_routes},
    dev_auth::run_cli,
};

async fn get(app: &TestApp, path: &str, header: (&str, String)) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(header.0, header.1)
        .send()
        .await
        .expect("request")
}

async fn keys_are_accepted_checked_and_revoked(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let key = app.service_key("billing", &["tokens:read"]).await;
    assert!(
        key.starts_with("usk_") && key.len() == 47,
        "usk_ + 43 characters"
    );
    for header in [
        ("x-api-key", key.clone()),
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("ApiKey {key}")),
    ] {
        let res = get(&app, "/test/tokens", header.clone()).await;
        assert_eq!(res.status(), 200, "{}", header.0);
        assert_eq!(res.text().await.expect("body"), "billing");
    }
    // Not an admin, and a user session is not a service.
    let res = get(&app, "/test/admin", ("x-api-key", key.clone())).await;
    assert_problem(res, 403, "forbidden").await;
    app.insert_user("user_1").await;
    let user = app.user_token("user_1", true);
    let res = get(
        &app,
        "/test/tokens",
        ("authorization", format!("Bearer {user}")),
    )
    .await;
    assert_problem(res, 403, "forbidden").await;

    // A key without the permission: 403 naming it; an admin key may do everything.
    let reader = app.service_key("reader", &["users:read"]).await;
    let res = get(&app, "/test/tokens", ("x-api-key", reader.clone())).await;
    let body = assert_problem(res, 403, "forbidden").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("tokens:read")
    );
    assert!(!body.to_string().contains(&reader));
    let admin = app.service_key("ops", &["admin"]).await;
    assert_eq!(
        get(&app, "/test/tokens", ("x-api-key", admin.clone()))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&app, "/test/admin", ("x-api-key", admin))
            .await
            .status(),
        200
    );

    // Use is recorded (throttled to one write per minute per key).
    let listed = app.state.app().list_service_keys().await.expect("list");
    let billing = listed.iter().find(|k| k.name == "billing").expect("listed");
    assert!(billing.last_used_at.is_some());
    assert!(key.starts_with(&billing.prefix));

    // Revoked in this process: refused at once, although it was cached a moment ago.
    app.state
        .app()
        .revoke_service_key(&app::Ctx::system("cli"), "billing")
        .await
        .expect("revoked");
    let res = get(&app, "/test/tokens", ("x-api-key", key.clone())).await;
    let body = assert_problem(res, 401, "unauthorized").await;
    assert!(!body.to_string().contains(&key));
    // Well-formed but unknown, and malformed: 401.
    let unknown = format!("usk_{}", "A".repeat(43));
    let res = get(&app, "/test/tokens", ("x-api-key", unknown)).await;
    assert_problem(res, 401, "unauthorized").await;
    let res = get(&app, "/test/tokens", ("x-api-key", "usk_short".to_owned())).await;
    assert_problem(res, 401, "unauthorized").await;

    // Duplicate names and bad input are refused by the use case.
    let ctx = app::Ctx::system("cli");
    let dup = app
        .state
        .app()
        .create_service_key(&ctx, "reader", &["users:read"])
        .await;
    assert!(matches!(dup, Err(app::AppError::Conflict(_))), "{dup:?}");
    let bad = app
        .state
        .app()
        .create_service_key(&ctx, "Bad Name", &["users:read"])
        .await;
    assert!(matches!(bad, Err(app::AppError::Validation(_))));
    let bad = app
        .state
        .app()
        .create_service_key(&ctx, "x", &["users:write"])
        .await;
    assert!(matches!(bad, Err(app::AppError::Validation(_))));

    // Create and revoke are audited, without key material.
    let entries = testkit::store::audit::list(
        app.state.app().test_db().reader(),
        &testkit::store::audit::AuditFilter::default(),
        100,
    )
    .await
    .expect("audit");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"service_key.created"), "{actions:?}");
    assert!(actions.contains(&"service_key.revoked"), "{actions:?}");
    let revoked = entries
        .iter()
        .find(|e| e.action == "service_key.revoked")
        .expect("entry");
    assert_eq!(revoked.resource_id.as_deref(), Some("billing"));
    assert_eq!(revoked.actor_id.as_deref(), Some("cli"));
    let all = format!("{entries:?}");
    assert!(!all.contains(&key) && !all.contains(&key[4..]));
    app.shutdown().await.expect("clean shutdown");
}

async fn debug_output_holds_no_key_material(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let created = app
        .state
        .app()
        .create_service_key(&app::Ctx::system("test"), "svc", &["users:read"])
        .await
        .expect("created");
    let key = created.key.expose_secret().to_owned();
    let hash = hex(&Sha256::digest(key.as_bytes()));
    let verified = app
        .state
        .app()
        .verify_service_key(&key)
        .await
        .expect("lookup")
        .expect("verified");
    let principal =
        server::auth::Principal::Service(server::auth::ServicePrincipal::from(verified.clone()));
    for shown in [
        format!("{created:?}"),
        format!("{verified:?}"),
        format!("{principal:?}"),
    ] {
        assert!(!shown.contains(&key[4..]), "{shown}");
        assert!(!shown.contains(&hash), "{shown}");
    }
}

async fn cli_creates_lists_and_revokes(backend: Backend) {
    let app = spawn_app_with_routes(backend, &[], probe_routes()).await;
    let out = run_cli(
        &app,
        &[
            "service-key",
            "create",
            "--name",
            "ci",
            "--permissions",
            "tokens:read,users:read",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = stdout
        .lines()
        .find(|l| l.starts_with("usk_"))
        .expect("key printed")
        .to_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be shown again"));
    let res = get(
        &app,
        "/test/tokens",
        ("authorization", format!("ApiKey {key}")),
    )
    .await;
    assert_eq!(res.status(), 200);

    let out = run_cli(
        &app,
        &[
            "service-key",
            "create",
            "--name",
            "ci",
            "--permissions",
            "admin",
        ],
        &[],
    );
    assert!(!out.status.success(), "duplicate name refused");
    assert_exit(
        &out,
        1,
        r#"user-service: a service key named "ci" already exists"#,
    );
    let out = run_cli(
        &app,
        &[
            "service-key",
            "create",
            "--name",
            "x",
            "--permissions",
            "nope",
        ],
        &[],
    );
    assert!(!out.status.success(), "unknown permission refused");
    assert_exit(
        &out,
        1,
        r#"user-service: permissions unknown permission "nope""#,
    );

    // A second key, revoked by the CLI before any use: refused by the running service.
    let out = run_cli(
        &app,
        &[
            "service-key",
            "create",
            "--name",
            "old",
            "--permissions",
            "tokens:read",
        ],
        &[],
    );
    let old = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("usk_"))
        .expect("key printed")
        .to_owned();
    let out = run_cli(&app, &["service-key", "revoke", "old"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = get(&app, "/test/tokens", ("x-api-key", old.clone())).await;
    assert_problem(res, 401, "unauthorized").await;
    let out = run_cli(&app, &["service-key", "revoke", "never-existed"], &[]);
    assert!(!out.status.success(), "unknown name exits non-zero");
    assert_exit(&out, 1, "user-service: service key not found");

    let out = run_cli(&app, &["service-key", "list"], &[]);
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    for k in [&key, &old] {
        assert!(
            !listing.contains(k.as_str()) && !listing.contains(&k[4..]),
            "{listing}"
        );
        assert!(
            !listing.contains(&hex(&Sha256::digest(k.as_bytes()))),
            "{listing}"
        );
        assert!(listing.contains(&k[..12]), "prefix shown: {listing}");
    }
    let ci = listing
        .lines()
        .find(|l| l.starts_with("ci "))
        .expect("ci listed");
    assert!(ci.contains("tokens:read,users:read"), "{ci}");
    let old_line = listing
        .lines()
        .find(|l| l.starts_with("old "))
        .expect("old listed");
    assert!(
        !old_line.trim_end().ends_with(" -"),
        "revocation time shown: {old_line}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

both_backends!(
    keys_are_accepted_checked_and_revoked,
    debug_output_holds_no_key_material,
    cli_creates_lists_and_revokes
);
