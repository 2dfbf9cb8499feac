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
    let w = app.test_db().writer();
    let user_id = fixtures::user(clerk).insert(w).await;
    let integration_id = fixtures::integration(user_id, provider)
        .expires_at(None)
        .insert(w)
        .await;
    (user_id, integration_id)
}

/// A caller as authentication makes one: a verified session of `clerk` (with the admin
/// claim when `admin`), whose user is inserted first when missing.
pub async fn session(
    app: &app::App,
    clerk: &str,
    admin: bool,
    meta: app::RequestMeta,
) -> app::access::Caller {
    let clerk_user_id = domain::user::ClerkUserId::parse(clerk).expect("a Clerk id");
    let key = app::users::UserKey::Clerk(clerk_user_id.clone());
    let known = app
        .find_user(&key, store::users::Deleted::Include)
        .await
        .expect("lookup");
    if known.is_none() {
        fixtures::user(clerk).insert(app.test_db().writer()).await;
    }
    let claims = app::users::session::SessionClaims {
        clerk_user_id,
        admin,
    };
    match app
        .session_user(claims, meta, app::users::session::SessionRead::Current)
        .await
        .expect("session")
    {
        app::users::session::SessionUser::Live { caller, .. } => caller,
        other => panic!("{clerk} is not a live user: {other:?}"),
    }
}

/// The right to act for the user `clerk` as that user's own session.
pub async fn owner(app: &app::App, clerk: &str, meta: app::RequestMeta) -> app::access::AsOwner {
    let user = session(app, clerk, false, meta.clone()).await;
    let id = user.user().expect("a live user");
    user.as_owner(id, clerk, meta).expect("its own user")
}

/// [`owner`] of the user with the service id `id`.
pub async fn owner_by_id(app: &app::App, id: Uuid) -> app::access::AsOwner {
    let key = app::users::UserKey::Id(domain::UserId::from_uuid(id));
    let user = app
        .find_user(&key, store::users::Deleted::Include)
        .await
        .expect("lookup")
        .expect("the user exists");
    owner(app, &user.clerk_user_id, app::RequestMeta::default()).await
}
