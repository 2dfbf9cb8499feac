//! The one-statement token read answers exactly what the narrow lookups answer (user,
//! integration, ciphertext), on both engines, for both ways of naming a user.

use chrono::{Duration, SubsecRound, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;
use store::{
    Db, DbOptions,
    entities::{integrations, users},
    token_lookup::{self, UserBy},
    users::Deleted,
};
use testkit::{Backend, TestDb, both_backends};
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

    let narrow = store::integrations::find(r, ada, "google")
        .await
        .expect("find")
        .expect("exists");
    for by in [UserBy::Id(ada), UserBy::Clerk("user_ada")] {
        let (i, token) = token_lookup::find(r, by, "google", "access")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(i, narrow, "{by:?}");
        assert_eq!(token, Some((3, vec![1, 2, 3])), "{by:?}");
        let (_, refresh) = token_lookup::find(r, by, "google", "refresh")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(refresh, Some((3, vec![9, 9])));
        let (i, none) = token_lookup::find(r, by, "github", "access")
            .await
            .expect("lookup")
            .expect("an integration without tokens is still found");
        assert_eq!((i.id, none), (github, None));
        assert!(
            token_lookup::find(r, by, "microsoft", "access")
                .await
                .expect("lookup")
                .is_none()
        );
    }
    assert!(
        token_lookup::find(r, UserBy::Clerk("user_nobody"), "google", "access")
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
        token_lookup::find(r, UserBy::Id(bob), "google", "access")
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
        store::users::find_by_id(r, gone, Deleted::Include)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        token_lookup::find(r, UserBy::Clerk("user_gone"), "google", "access")
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
    users::ActiveModel {
        id: Set(id),
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
        deleted_at: Set(deleted_at),
    }
}

/// Every optional column set, so a column read from the wrong position shows.
fn integration(
    id: Uuid,
    user_id: Uuid,
    provider: &str,
    now: chrono::DateTime<Utc>,
) -> integrations::ActiveModel {
    let at = |m: i64| Some(now + Duration::minutes(m));
    integrations::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        status: Set("active".to_owned()),
        account_id: Set(Some("1234".to_owned())),
        account_email: Set(Some("ada@gmail.com".to_owned())),
        scopes: Set(json!(["openid", "email"])),
        connected_at: Set(at(1)),
        expires_at: Set(at(2)),
        last_refreshed_at: Set(at(3)),
        last_refresh_attempt_at: Set(at(4)),
        last_checked_at: Set(at(5)),
        last_used_at: Set(at(6)),
        last_error: Set(Some("none yet".to_owned())),
        refresh_failures: Set(7),
        refresh_lease_until: Set(at(8)),
        refresh_not_before: Set(at(9)),
        created_at: Set(now),
        updated_at: Set(now + Duration::minutes(10)),
    }
}
