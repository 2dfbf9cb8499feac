//! The storage story: one walk through the whole data model, the same code on SQLite and
//! on Postgres (atuin's db_story idea). If a type, constraint or index behaves differently
//! on one engine, this is where it shows.

use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use store::{
    Db, DbOptions, TransactionTrait,
    entities::{
        event_deliveries, event_outbox, integrations, oauth_states, preference_history,
        preference_overrides, service_keys, users, webhook_events,
    },
};
use testkit::{Backend, TestDb, both_backends, fixtures};
use uuid::Uuid;

both_backends!(whole_data_model_story);

async fn whole_data_model_story(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    assert!(db.migrations_current().await.expect("status"));
    db.migrate().await.expect("migrating twice is a no-op");
    let w = db.writer();
    let now = Utc::now();

    // A user, unique by Clerk id.
    let user_id = Uuid::now_v7();
    users::Entity::insert(user(user_id, "user_story1", now))
        .exec(w)
        .await
        .expect("insert user");
    let dup = users::Entity::insert(user(Uuid::now_v7(), "user_story1", now))
        .exec(w)
        .await;
    assert_unique_violation(dup.map(|_| ()), "clerk_user_id is unique");
    let found = users::Entity::find()
        .filter(users::Column::ClerkUserId.eq("user_story1"))
        .one(db.reader())
        .await
        .expect("query");
    assert_eq!(found.expect("found").id, user_id);

    // Preferences: overrides and a history row, unique per (user, version).
    preference_overrides::Entity::insert(preference_overrides::ActiveModel {
        user_id: Set(user_id),
        schema_version: Set(1),
        version: Set(1),
        overrides: Set(json!({"ui": {"theme": "dark"}})),
        updated_at: Set(now),
    })
    .exec(w)
    .await
    .expect("overrides");
    let history = |v: i64| preference_history::ActiveModel {
        user_id: Set(user_id),
        version: Set(v),
        schema_version: Set(1),
        changes: Set(json!({"ui": {"theme": "dark"}})),
        snapshot: Set(json!({"ui": {"theme": "dark"}})),
        changed_by: Set("user_story1".to_owned()),
        changed_at: Set(now),
        ..Default::default()
    };
    preference_history::Entity::insert(history(1))
        .exec(w)
        .await
        .expect("history");
    assert_unique_violation(
        preference_history::Entity::insert(history(1))
            .exec(w)
            .await
            .map(|_| ()),
        "one row per version",
    );
    let prefs = preference_overrides::Entity::find_by_id(user_id)
        .one(w)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(prefs.overrides["ui"]["theme"], "dark", "JSON round-trips");

    // An integration (unique per user and provider) with its sealed tokens.
    let integration_id = Uuid::now_v7();
    integrations::Entity::insert(integration(integration_id, user_id, now))
        .exec(w)
        .await
        .expect("integration");
    assert_unique_violation(
        integrations::Entity::insert(integration(Uuid::now_v7(), user_id, now))
            .exec(w)
            .await
            .map(|_| ()),
        "one per provider",
    );
    let blob = vec![1u8, 0, 0, 0, 1, 0xff, 0x00, 0x7f];
    store::ciphertexts::put_token(w, user_id, integration_id, "refresh", 1, blob.clone())
        .await
        .expect("token");
    store::ciphertexts::put_token(w, user_id, integration_id, "access", 1, vec![9])
        .await
        .expect("token");
    store::ciphertexts::put_token(w, user_id, integration_id, "access", 2, vec![1, 2, 3])
        .await
        .expect("upsert replaces");
    assert_eq!(
        store::ciphertexts::get_token(w, user_id, integration_id, "refresh")
            .await
            .expect("q"),
        Some((1, blob)),
        "bytes round-trip"
    );
    assert_eq!(
        store::ciphertexts::get_token(w, Uuid::now_v7(), integration_id, "refresh")
            .await
            .expect("q"),
        None,
        "scoped to the owner"
    );
    let counts = store::ciphertexts::count_by_version(w)
        .await
        .expect("counts");
    assert_eq!(counts.get(&1), Some(&1));
    assert_eq!(counts.get(&2), Some(&1));

    // An OAuth state with its sealed PKCE verifier; expiry is queryable.
    oauth_states::Entity::insert(oauth_states::ActiveModel {
        state_hash: Set("ab".repeat(32)),
        user_id: Set(user_id),
        provider: Set("google".to_owned()),
        redirect_uri: Set("https://app.example/cb".to_owned()),
        scopes: Set(json!(["openid"])),
        key_version: Set(1),
        pkce_verifier: Set(vec![1, 2]),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(10)),
        used_at: Set(None),
    })
    .exec(w)
    .await
    .expect("state");
    let live = oauth_states::Entity::find()
        .filter(oauth_states::Column::ExpiresAt.gt(now))
        .count(w)
        .await
        .expect("count");
    assert_eq!(live, 1, "timestamps compare correctly");

    // Webhook ids are processed once.
    let hook = || webhook_events::ActiveModel {
        id: Set("msg_1".to_owned()),
        source: Set("clerk".to_owned()),
        event_type: Set("user.created".to_owned()),
        outcome: Set("processed".to_owned()),
        processed_at: Set(now),
    };
    webhook_events::Entity::insert(hook())
        .exec(w)
        .await
        .expect("first");
    let err = webhook_events::Entity::insert(hook())
        .exec(w)
        .await
        .expect_err("duplicate");
    assert!(
        store::StoreError::from(err).is_unique_violation(),
        "duplicates are recognisable"
    );

    // Service keys: unique names and hashes.
    let key = |name: &str, hash: &str| service_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        key_hash: Set(hash.to_owned()),
        key_prefix: Set("usk_abcd".to_owned()),
        permissions: Set(json!(["tokens:read"])),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
        providers: Set(None),
        scope_ceiling: Set(None),
        expires_at: Set(None),
        previous_key_hash: Set(None),
        previous_valid_until: Set(None),
    };
    service_keys::Entity::insert(key("mailer", "h1"))
        .exec(w)
        .await
        .expect("key");
    assert_unique_violation(
        service_keys::Entity::insert(key("mailer", "h2"))
            .exec(w)
            .await
            .map(|_| ()),
        "one key per name",
    );

    // Events: outbox row and its deliveries go together.
    let event_id = Uuid::now_v7();
    let txn = w.begin().await.expect("begin");
    event_outbox::Entity::insert(event_outbox::ActiveModel {
        id: Set(event_id),
        event_type: Set("user.created".to_owned()),
        user_id: Set(Some(user_id)),
        payload: Set(json!({"type": "user.created"})),
        created_at: Set(now),
    })
    .exec(&txn)
    .await
    .expect("event");
    event_deliveries::Entity::insert(event_deliveries::ActiveModel {
        event_id: Set(event_id),
        subscriber_url: Set("https://sub.example/hook".to_owned()),
        status: Set("pending".to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await
    .expect("delivery");
    txn.rollback().await.expect("rollback");
    assert_eq!(
        event_outbox::Entity::find().count(w).await.expect("count"),
        0,
        "rolled back together"
    );

    // Deleting a user removes everything hanging off it (ciphertexts included).
    users::Entity::delete_by_id(user_id)
        .exec(w)
        .await
        .expect("delete");
    assert!(
        store::ciphertexts::count_by_version(w)
            .await
            .expect("counts")
            .is_empty(),
        "ciphertexts cascade"
    );
    assert_eq!(
        oauth_states::Entity::find().count(w).await.expect("count"),
        0
    );
    assert_eq!(
        preference_history::Entity::find()
            .count(w)
            .await
            .expect("count"),
        0
    );
    db.close().await;
}

fn user(id: Uuid, clerk: &str, now: chrono::DateTime<Utc>) -> users::ActiveModel {
    fixtures::user(clerk)
        .id(id)
        .email("ada@example.com")
        .first_name("Ada")
        .at(now)
        .row()
}

fn integration(id: Uuid, user_id: Uuid, now: chrono::DateTime<Utc>) -> integrations::ActiveModel {
    fixtures::integration(user_id, "google")
        .id(id)
        .account("1234", "ada@gmail.com")
        .scopes(&["openid", "email"])
        .at(now)
        .row()
}

/// The one error a duplicate insert may fail with, on both engines.
fn assert_unique_violation(result: Result<(), sea_orm::DbErr>, why: &str) {
    let err = result.expect_err(why);
    assert!(
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{why}: expected a unique violation, got {err}"
    );
}
