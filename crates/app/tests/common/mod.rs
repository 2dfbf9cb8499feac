//! App-level test support: an `App` over a fresh database with a given keyring.

#![allow(dead_code)] // Each test file uses a different subset.

use store::{Db, DbOptions};
use testkit::{Backend, TestDb, fixtures};
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

/// Inserts a user with one integration of `provider` (no expiry); returns (user id,
/// integration id).
pub async fn user_with_integration(app: &app::App, clerk: &str, provider: &str) -> (Uuid, Uuid) {
    let w = app.db().writer();
    let user_id = fixtures::user(clerk).insert(w).await;
    let integration_id = fixtures::integration(user_id, provider)
        .expires_at(None)
        .insert(w)
        .await;
    (user_id, integration_id)
}
