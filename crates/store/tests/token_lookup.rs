//! The one-statement token read answers exactly what the narrow lookups answer (user,
//! integration, ciphertext), on both engines, for both ways of naming a user.

use chrono::{SubsecRound, Utc};
use sea_orm::EntityTrait;
use store::{
    Db, DbOptions,
    entities::{integrations, users},
    token_lookup::{self, UserBy},
    users::Deleted,
};
use testkit::{Backend, TestDb, both_backends, fixtures};
use uuid::Uuid;

both_backends!(one_read_matches_the_narrow_lookups);

async fn one_read_matches_the_narrow_lookups(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let (w, r) = (db.writer(), db.reader());
    // Postgres keeps microseconds: compare what is read back.
    let now = Utc::now().trunc_subsecs(6);

    let ada = Uuid::now_v7();
    users::Entity::insert(user(ada, "user_ada", now, None))
        .exec(w)
        .await
        .expect("user");
    let google = Uuid::now_v7();
    integrations::Entity::insert(integration(google, ada, "google", now))
        .exec(w)
        .await
        .expect("integration");
    for (kind, ct) in [("access", vec![1u8, 2, 3]), ("refresh", vec![9u8, 9])] {
        store::ciphertexts::put_token(w, ada, google, kind, 3, ct)
            .await
            .expect("token");
    }
    // A second integration without tokens.
    let github = Uuid::now_v7();
    integrations::Entity::insert(integration(github, ada, "github", now))
        .exec(w)
        .await
        .expect("integration");

    let narrow = store::integrations::find(
        r,
        domain::UserId::from_uuid(ada),
        "google",
        &domain::integration::Account::Default,
    )
    .await
    .expect("find")
    .expect("exists");
    // One row read: the hand-out does not say whether it is the default.
    let narrow = store::integrations::Integration {
        default: false,
        ..narrow
    };
    for by in [UserBy::Id(ada), UserBy::Clerk("user_ada")] {
        let (i, token) = token_lookup::find(r, by, "google", None, "access")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(i, narrow, "{by:?}");
        assert_eq!(token, Some((3, vec![1, 2, 3])), "{by:?}");
        let (_, refresh) = token_lookup::find(r, by, "google", None, "refresh")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(refresh, Some((3, vec![9, 9])));
        let (i, none) = token_lookup::find(r, by, "github", None, "access")
            .await
            .expect("lookup")
            .expect("an integration without tokens is still found");
        assert_eq!((i.id.as_uuid(), none), (github, None));
        assert!(
            token_lookup::find(r, by, "microsoft", None, "access")
                .await
                .expect("lookup")
                .is_none()
        );
    }
    assert!(
        token_lookup::find(r, UserBy::Clerk("user_nobody"), "google", None, "access")
            .await
            .expect("lookup")
            .is_none()
    );

    // Another user's integration is never read through this one's name.
    let bob = Uuid::now_v7();
    users::Entity::insert(user(bob, "user_bob", now, None))
        .exec(w)
        .await
        .expect("user");
    assert!(
        token_lookup::find(r, UserBy::Id(bob), "google", None, "access")
            .await
            .expect("lookup")
            .is_none()
    );

    // A soft-deleted user has no tokens to hand out.
    let gone = Uuid::now_v7();
    users::Entity::insert(user(gone, "user_gone", now, Some(now)))
        .exec(w)
        .await
        .expect("user");
    integrations::Entity::insert(integration(Uuid::now_v7(), gone, "google", now))
        .exec(w)
        .await
        .expect("integration");
    assert!(
        store::users::find_by_id(r, domain::UserId::from_uuid(gone), Deleted::Include)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        token_lookup::find(r, UserBy::Clerk("user_gone"), "google", None, "access")
            .await
            .expect("lookup")
            .is_none()
    );
    db.close().await;
}

fn user(
    id: Uuid,
    clerk: &str,
    now: chrono::DateTime<Utc>,
    deleted_at: Option<chrono::DateTime<Utc>>,
) -> users::ActiveModel {
    fixtures::user(clerk)
        .id(id)
        .at(now)
        .deleted_at(deleted_at)
        .row()
}

/// Every optional column set, so a column read from the wrong position shows.
fn integration(
    id: Uuid,
    user_id: Uuid,
    provider: &str,
    now: chrono::DateTime<Utc>,
) -> integrations::ActiveModel {
    fixtures::integration(user_id, provider)
        .id(id)
        .account("1234", "ada@gmail.com")
        .scopes(&["openid", "email"])
        .at(now)
        .every_column_set()
        .row()
}
