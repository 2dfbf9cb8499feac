//! Key rotation on both backends: rows under v1 → add v2 → reads still work → rotate →
//! all on v2 → remove v1 → reads still work; an interrupted rotation resumes.

mod common;

use common::{KEY1, KEY2, app, reopen, user_with_integration};
use secrecy::ExposeSecret;
use testkit::{Backend, both_backends};
use vault::{Binding, TokenKind};

both_backends!(
    rotation_keeps_every_token_readable,
    interrupted_rotation_resumes
);

async fn seal_tokens(app: &app::App, n: usize) -> Vec<(uuid::Uuid, uuid::Uuid, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (user, integration) =
            user_with_integration(app, &format!("user_rot{i}"), "google").await;
        let secret = format!("1//refresh-token-{i}");
        let sealed = app.vault().seal(
            secret.as_bytes(),
            &Binding::new(user, "google", TokenKind::Refresh),
        );
        let v = i32::try_from(app.vault().active_version()).expect("version");
        store::ciphertexts::put_token(
            app.test_db().writer(),
            user,
            integration,
            "refresh",
            v,
            sealed,
        )
        .await
        .expect("put");
        out.push((user, integration, secret));
    }
    out
}

async fn assert_readable(app: &app::App, tokens: &[(uuid::Uuid, uuid::Uuid, String)]) {
    for (user, integration, secret) in tokens {
        let (_, ct) =
            store::ciphertexts::get_token(app.test_db().reader(), *user, *integration, "refresh")
                .await
                .expect("q")
                .expect("row");
        let plain = app
            .vault()
            .open(&ct, &Binding::new(*user, "google", TokenKind::Refresh))
            .expect("opens");
        assert_eq!(plain.expose_secret(), secret.as_bytes());
    }
}

async fn rotation_keeps_every_token_readable(backend: Backend) {
    let (v1, tdb) = app(backend, KEY1).await;
    let tokens = seal_tokens(&v1, 5).await;
    assert_eq!(
        v1.key_status()
            .await
            .expect("status")
            .ciphertexts_by_version["1"],
        5
    );

    let both = reopen(&tdb, &format!("{KEY1},{KEY2}")).await;
    assert_eq!(
        both.vault().active_version(),
        2,
        "the new version is active at once"
    );
    assert_readable(&both, &tokens).await;
    let report = both
        .rotate_keys(&app::Ctx::system("test"), 2, None)
        .await
        .expect("rotate");
    assert_eq!(
        (report.rotated, report.failed, report.complete),
        (5, 0, true)
    );
    let status = both.key_status().await.expect("status");
    assert_eq!(status.active_version, 2);
    assert_eq!(status.ciphertexts_by_version["1"], 0);
    assert_eq!(status.ciphertexts_by_version["2"], 5);
    let again = both
        .rotate_keys(&app::Ctx::system("test"), 2, None)
        .await
        .expect("rotate again");
    assert_eq!(again.rotated, 0, "idempotent");

    let v2_only = reopen(&tdb, KEY2).await;
    assert_readable(&v2_only, &tokens).await;
    // Exactly one keys.rotated entry, counts only.
    let entries = store::audit::list(
        v2_only.test_db().reader(),
        &store::audit::AuditFilter {
            action: Some("keys.rotated".into()),
            ..Default::default()
        },
        10,
    )
    .await
    .expect("audit");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].details["rotated"], 5);
    assert!(
        !entries[0].details.to_string().contains("refresh-token"),
        "no secret in details"
    );
}

async fn interrupted_rotation_resumes(backend: Backend) {
    let (v1, tdb) = app(backend, KEY1).await;
    let tokens = seal_tokens(&v1, 5).await;
    let both = reopen(&tdb, &format!("{KEY1},{KEY2}")).await;
    // One batch of two, then "killed".
    let first = both
        .rotate_keys(&app::Ctx::system("test"), 2, Some(1))
        .await
        .expect("partial");
    assert_eq!((first.rotated, first.complete), (2, false));
    let status = both.key_status().await.expect("status");
    assert_eq!(
        (
            status.ciphertexts_by_version["1"],
            status.ciphertexts_by_version["2"]
        ),
        (3, 2)
    );
    // A fresh process picks up where it stopped.
    let resumed = reopen(&tdb, &format!("{KEY1},{KEY2}")).await;
    let rest = resumed
        .rotate_keys(&app::Ctx::system("test"), 2, None)
        .await
        .expect("resume");
    assert_eq!((rest.rotated, rest.complete), (3, true));
    assert_readable(&reopen(&tdb, KEY2).await, &tokens).await;
}
