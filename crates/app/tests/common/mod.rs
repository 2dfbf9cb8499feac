//! App-level test support: an `App` over a fresh database with a given keyring.

#![allow(dead_code)] // Each test file uses a different subset.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use store::{
    Db, DbOptions,
    entities::{integrations, users},
};
use testkit::{Backend, TestDb};
use uuid::Uuid;
use vault::{Keyring, Vault};

pub const KEY1: &str = "1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const KEY2: &str = "2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// An app over a fresh, migrated database of `backend`, with the keyring `keys`.
pub async fn app(backend: Backend, keys: &str) -> (app::App, TestDb) {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (app::App::new(db, vault(keys)), tdb)
}

/// The same database seen through another keyring (a restart with new configuration).
pub async fn reopen(tdb: &TestDb, keys: &str) -> app::App {
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    app::App::new(db, vault(keys))
}

pub fn vault(keys: &str) -> Vault {
    Vault::new(Keyring::parse(keys, None).expect("test keyring"))
}

/// Inserts a user with one integration of `provider`; returns (user id, integration id).
pub async fn user_with_integration(app: &app::App, clerk: &str, provider: &str) -> (Uuid, Uuid) {
    let now = Utc::now();
    let user_id = Uuid::now_v7();
    let w = app.db().writer();
    users::Entity::insert(users::ActiveModel {
        id: Set(user_id),
        clerk_user_id: Set(clerk.to_owned()),
        email: Set(None),
        first_name: Set(None),
        last_name: Set(None),
        profile_image_url: Set(None),
        onboarding_completed: Set(false),
        onboarding_step: Set(None),
        onboarding_completed_at: Set(None),
        last_sign_in_at: Set(None),
        clerk_updated_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    })
    .exec(w)
    .await
    .expect("user");
    let integration_id = Uuid::now_v7();
    integrations::Entity::insert(integrations::ActiveModel {
        id: Set(integration_id),
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        status: Set("active".to_owned()),
        account_id: Set(None),
        account_email: Set(None),
        scopes: Set(serde_json::json!([])),
        connected_at: Set(Some(now)),
        expires_at: Set(None),
        last_refreshed_at: Set(None),
        last_refresh_attempt_at: Set(None),
        last_checked_at: Set(None),
        last_used_at: Set(None),
        last_error: Set(None),
        refresh_failures: Set(0),
        refresh_lease_until: Set(None),
        refresh_not_before: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(w)
    .await
    .expect("integration");
    (user_id, integration_id)
}
