//! Preferences use cases on both backends: PUT/PATCH semantics, inheritance of system
//! defaults, If-Match (exactly one of two writers wins), history, rollback, reset,
//! export/import with migration, and the history row and audit entry of every change.

mod common;

use app::{App, AppError, RequestMeta, access::AsOwner};
use domain::{
    UserId,
    preferences::{Category, Theme, defaults_with},
};
use serde_json::{Value, json};
use store::{
    Db, DbOptions,
    audit::{AuditFilter, list},
};
use testkit::{Backend, TestDb, fixtures};

async fn open(backend: Backend) -> (TestDb, App) {
    let t = TestDb::new(backend).await;
    let db = Db::connect(t.url(), None, &DbOptions::default())
        .await
        .expect("must succeed");
    db.migrate().await.expect("must succeed");
    (
        t,
        App::new(db, vault::Vault::new(vault::Keyring::generate_dev())),
    )
}

async fn user(db: &Db) -> UserId {
    let id = UserId::new();
    fixtures::user(&format!("user_{}", id.as_uuid().simple()))
        .id(id.as_uuid())
        .insert(db.writer())
        .await;
    id
}

/// The right to act for `u`, held by the admin `user_alice` (the actor of every change).
async fn as_alice(app: &App, u: UserId) -> AsOwner {
    common::session(app, "user_alice", true, RequestMeta::default())
        .await
        .as_admin(RequestMeta::default())
        .expect("an admin")
        .over(u)
}

async fn audit_of(app: &App, u: UserId) -> Vec<(String, Value)> {
    let f = AuditFilter {
        user_id: Some(u),
        ..AuditFilter::default()
    };
    let mut entries: Vec<_> = list(app.test_db().writer(), &f, 100)
        .await
        .expect("must succeed")
        .into_iter()
        .map(|e| (e.action, e.details))
        .collect();
    entries.reverse();
    entries
}

async fn put_and_patch_semantics(backend: Backend) {
    let (_t, app) = open(backend).await;
    let u = user(app.test_db()).await;
    let c = as_alice(&app, u).await;
    let doc = app.preferences(&c, false).await.expect("must succeed");
    assert_eq!((doc.version, doc.updated_at), (0, None));
    assert_eq!(doc.preferences, app.preference_defaults().clone());

    let doc = app
        .put_preferences(&c, json!({"ui": {"theme": "dark", "density": "compact"}, "ai": {"preferred_model": "gpt-4o"}}), None)
        .await
        .expect("must succeed");
    assert_eq!(doc.version, 1);
    // Partial PUT: only the keys sent change.
    let doc = app
        .put_preferences(&c, json!({"ui": {"theme": "light"}}), Some(1))
        .await
        .expect("must succeed");
    assert_eq!(doc.version, 2);
    assert_eq!(doc.preferences.ui.theme, Theme::Light);
    assert_eq!(doc.preferences.ui.density.as_str(), "compact");
    assert_eq!(
        doc.preferences
            .ai
            .preferred_model
            .as_ref()
            .map(|m| m.as_str()),
        Some("gpt-4o")
    );
    // PATCH null: back to the default.
    let doc = app
        .patch_preferences(
            &c,
            json!({"ui": {"theme": null}, "ai": {"preferred_model": null}}),
            Some(2),
        )
        .await
        .expect("must succeed");
    assert_eq!(doc.preferences.ui.theme, Theme::System);
    assert_eq!(doc.preferences.ai.preferred_model, None);
    let read = app.preferences(&c, true).await.expect("must succeed");
    assert_eq!(read.version, 3);
    assert_eq!(read.preferences, doc.preferences);
    let sources = read.sources.expect("must succeed");
    assert_eq!(sources["ui"]["density"], "user");
    assert_eq!(sources["ui"]["theme"], "default");
    assert_eq!(sources["ai"]["preferred_model"], "default");

    // Validation: nothing written, the field named.
    let err = app
        .patch_preferences(
            &c,
            json!({"notifications": {"quiet_hours": {"start": "25:00"}}, "ui": {"colour": 1}}),
            None,
        )
        .await
        .expect_err("must fail");
    let AppError::Validation(v) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = v.0.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["notifications.quiet_hours.start", "ui.colour"]);
    // A change that changes nothing writes nothing.
    let same = app
        .patch_preferences(&c, json!({"ui": {"density": "compact"}}), None)
        .await
        .expect("must succeed");
    assert_eq!(same.version, 3);

    let page = app
        .preference_history(&c, None, 10)
        .await
        .expect("must succeed");
    assert_eq!(
        page.items.iter().map(|h| h.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(
        page.items[0].changes,
        json!({"ui": {"theme": null}, "ai": {"preferred_model": null}})
    );
    assert_eq!(page.items[1].changes, json!({"ui": {"theme": "light"}}));
    assert_eq!(page.items[0].changed_by, "user:user_alice");
    assert_eq!(page.next_cursor, None);
    let audit = audit_of(&app, u).await;
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|(a, _)| a == "preferences.updated"));
    assert_eq!(
        audit[2].1,
        json!({"changed": ["ai.preferred_model", "ui.theme"], "version": 3})
    );
}

async fn system_defaults_reach_users_without_an_override(backend: Backend) {
    let (_t, app) = open(backend).await;
    let plain = user(app.test_db()).await;
    let chooser = user(app.test_db()).await;
    app.put_preferences(
        &as_alice(&app, chooser).await,
        json!({"ui": {"theme": "light"}}),
        None,
    )
    .await
    .expect("must succeed");
    // Same database, new configuration: the default theme becomes dark.
    let app = app.with_preference_defaults(
        defaults_with(&json!({"ui": {"theme": "dark"}})).expect("must succeed"),
    );
    assert_eq!(
        app.preferences(&as_alice(&app, plain).await, false)
            .await
            .expect("must succeed")
            .preferences
            .ui
            .theme,
        Theme::Dark
    );
    assert_eq!(
        app.preferences(&as_alice(&app, chooser).await, false)
            .await
            .expect("must succeed")
            .preferences
            .ui
            .theme,
        Theme::Light
    );
    assert_eq!(app.preferences_schema().defaults.ui.theme, Theme::Dark);
}

async fn two_writers_with_the_same_if_match(backend: Backend) {
    let (_t, app) = open(backend).await;
    let u = user(app.test_db()).await;
    let c = as_alice(&app, u).await;
    app.put_preferences(&c, json!({"ui": {"theme": "dark"}}), None)
        .await
        .expect("must succeed");
    let (a, b) = tokio::join!(
        app.patch_preferences(&c, json!({"ui": {"density": "compact"}}), Some(1)),
        app.patch_preferences(&c, json!({"privacy": {"analytics_opt_in": true}}), Some(1)),
    );
    let (won, lost) = match (a, b) {
        (Ok(d), Err(e)) => (d, e),
        (Err(e), Ok(d)) => (d, e),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert!(matches!(lost, AppError::PreconditionFailed(_)), "{lost:?}");
    assert_eq!(won.version, 2);
    // Nothing of the loser: the document holds only the winner's change, one history row
    // and one audit entry per version.
    let doc = app.preferences(&c, false).await.expect("must succeed");
    assert_eq!(doc.version, 2);
    assert_eq!(doc.preferences, won.preferences);
    let compact = doc.preferences.ui.density.as_str() == "compact";
    assert_ne!(compact, doc.preferences.privacy.analytics_opt_in);
    assert_eq!(
        app.preference_history(&c, None, 10)
            .await
            .expect("must succeed")
            .items
            .len(),
        2
    );
    assert_eq!(audit_of(&app, u).await.len(), 2);
    // A stale version on its own is refused as well.
    let err = app
        .reset_preferences(&c, None, Some(1))
        .await
        .expect_err("must fail");
    assert!(matches!(err, AppError::PreconditionFailed(_)));
    assert_eq!(
        app.preferences(&c, false)
            .await
            .expect("must succeed")
            .version,
        2
    );
}

async fn history_rollback_and_reset(backend: Backend) {
    let (_t, app) = open(backend).await;
    let u = user(app.test_db()).await;
    let c = as_alice(&app, u).await;
    app.put_preferences(
        &c,
        json!({"ui": {"theme": "dark"}, "ai": {"memory_enabled": false}}),
        None,
    )
    .await
    .expect("must succeed");
    app.put_preferences(&c, json!({"ui": {"theme": "light"}}), None)
        .await
        .expect("must succeed");
    let v3 = app
        .reset_preferences(&c, Some(Category::Ui), None)
        .await
        .expect("must succeed");
    assert_eq!(v3.preferences.ui.theme, Theme::System);
    assert!(!v3.preferences.ai.memory_enabled);

    // Rollback to version 1 makes version 4 with version 1's values.
    let v4 = app
        .rollback_preferences(&c, 1, Some(3))
        .await
        .expect("must succeed");
    assert_eq!(v4.version, 4);
    assert_eq!(v4.preferences.ui.theme, Theme::Dark);
    assert!(!v4.preferences.ai.memory_enabled);
    let missing = app
        .rollback_preferences(&c, 42, None)
        .await
        .expect_err("must fail");
    assert!(matches!(missing, AppError::NotFound(_)), "{missing:?}");
    let v5 = app
        .reset_preferences(&c, None, None)
        .await
        .expect("must succeed");
    assert_eq!(v5.version, 5);
    assert_eq!(v5.preferences, app.preference_defaults().clone());

    // Pages, newest first.
    let p1 = app
        .preference_history(&c, None, 2)
        .await
        .expect("must succeed");
    assert_eq!(
        p1.items.iter().map(|h| h.version).collect::<Vec<_>>(),
        [5, 4]
    );
    let p2 = app
        .preference_history(&c, p1.next_cursor.as_deref(), 2)
        .await
        .expect("must succeed");
    assert_eq!(
        p2.items.iter().map(|h| h.version).collect::<Vec<_>>(),
        [3, 2]
    );
    let p3 = app
        .preference_history(&c, p2.next_cursor.as_deref(), 2)
        .await
        .expect("must succeed");
    assert_eq!(p3.items.iter().map(|h| h.version).collect::<Vec<_>>(), [1]);
    assert_eq!(p3.next_cursor, None);
    assert!(matches!(
        app.preference_history(&c, Some("nope"), 2).await,
        Err(AppError::InvalidRequest(_))
    ));

    let actions: Vec<_> = audit_of(&app, u)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "preferences.updated",
            "preferences.updated",
            "preferences.reset",
            "preferences.rolled_back",
            "preferences.reset"
        ]
    );
}

async fn export_import_round_trip_and_v0(backend: Backend) {
    let (_t, app) = open(backend).await;
    let alice = user(app.test_db()).await;
    let bob = user(app.test_db()).await;
    let (c, to_bob) = (as_alice(&app, alice).await, as_alice(&app, bob).await);
    let doc = app
        .put_preferences(&c, json!({"ui": {"timezone": "Europe/Berlin"}, "integrations": {"sync_frequency_minutes": 60, "default_calendar_provider": "google"}}), None)
        .await
        .expect("must succeed");
    let export = serde_json::to_value(app.export_preferences(&c).await.expect("must succeed"))
        .expect("must succeed");
    assert_eq!(export["schema_version"], 1);
    assert_eq!(
        export["preferences"]["ui"],
        json!({"timezone": "Europe/Berlin"})
    );
    let imported = app
        .import_preferences(&to_bob, &export, Some(0))
        .await
        .expect("must succeed");
    assert_eq!(imported.version, 1);
    assert_eq!(imported.preferences, doc.preferences);

    // A v0 document is migrated on import and replaces the user's overrides.
    let v0 = json!({"schema_version": 0, "preferences": {"ui": {"dark_mode": true}, "notifications": {"digest": "off"}}});
    let migrated = app
        .import_preferences(&to_bob, &v0, None)
        .await
        .expect("must succeed");
    assert_eq!(migrated.version, 2);
    assert_eq!(migrated.preferences.ui.theme, Theme::Dark);
    assert_eq!(
        migrated.preferences.notifications.digest_frequency.as_str(),
        "never"
    );
    assert_eq!(migrated.preferences.ui.timezone.as_str(), "UTC");
    let bad = json!({"schema_version": 0, "preferences": {"ui": {"dark_mode": 3}}});
    let AppError::Validation(v) = app
        .import_preferences(&to_bob, &bad, None)
        .await
        .expect_err("must fail")
    else {
        panic!("expected a validation error")
    };
    assert_eq!(v.0[0].field, "preferences.ui.dark_mode");
    let audit = audit_of(&app, bob).await;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|(a, _)| a == "preferences.imported"));
}

testkit::both_backends!(
    put_and_patch_semantics,
    system_defaults_reach_users_without_an_override,
    two_writers_with_the_same_if_match,
    history_rollback_and_reset,
    export_import_round_trip_and_v0
);
