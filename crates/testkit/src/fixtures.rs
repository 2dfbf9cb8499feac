//! The one place tests build user and integration rows. Every test that needs a user or an
//! integration in the database starts from [`user`] or [`integration`] and changes only
//! what it is about, so a change to the tables (or to the records `store` returns) is made
//! here once.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use serde_json::{Value, json};
use store::entities::{integration_tokens, integrations, oauth_states, users};
use uuid::Uuid;

/// Now, at the precision both engines store (microseconds), so what a test writes is what
/// it reads back.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// An active, never-onboarded user with Clerk id `clerk_user_id` and nothing else set.
#[must_use]
pub fn user(clerk_user_id: &str) -> UserFixture {
    UserFixture {
        id: Uuid::now_v7(),
        clerk_user_id: clerk_user_id.to_owned(),
        email: None,
        first_name: None,
        last_name: None,
        onboarding_step: None,
        at: now(),
        deleted_at: None,
    }
}

/// A user row to be: see [`user`].
#[derive(Clone, Debug)]
pub struct UserFixture {
    pub id: Uuid,
    pub clerk_user_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub onboarding_step: Option<String>,
    /// Both `created_at` and `updated_at`.
    pub at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl UserFixture {
    #[must_use]
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    #[must_use]
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    #[must_use]
    pub fn names(mut self, first: &str, last: &str) -> Self {
        self.first_name = Some(first.to_owned());
        self.last_name = Some(last.to_owned());
        self
    }

    #[must_use]
    pub fn first_name(mut self, first: &str) -> Self {
        self.first_name = Some(first.to_owned());
        self
    }

    #[must_use]
    pub fn onboarding_step(mut self, step: &str) -> Self {
        self.onboarding_step = Some(step.to_owned());
        self
    }

    /// Created (and last updated) at `at`.
    #[must_use]
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }

    #[must_use]
    pub fn deleted_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.deleted_at = at;
        self
    }

    /// The row, for tests that insert it themselves.
    #[must_use]
    pub fn row(&self) -> users::ActiveModel {
        users::ActiveModel {
            id: Set(self.id),
            clerk_user_id: Set(self.clerk_user_id.clone()),
            email: Set(self.email.clone()),
            first_name: Set(self.first_name.clone()),
            last_name: Set(self.last_name.clone()),
            profile_image_url: Set(None),
            onboarding_completed: Set(false),
            onboarding_step: Set(self.onboarding_step.clone()),
            onboarding_completed_at: Set(None),
            last_sign_in_at: Set(None),
            clerk_updated_at: Set(None),
            created_at: Set(self.at),
            updated_at: Set(self.at),
            deleted_at: Set(self.deleted_at),
        }
    }

    /// Inserts the row; returns the user's id.
    ///
    /// # Panics
    /// When the insert fails (a test's setup is broken).
    pub async fn insert(self, db: &impl ConnectionTrait) -> Uuid {
        self.row()
            .insert(db)
            .await
            .expect("fixture user is inserted");
        self.id
    }
}

/// An active integration of `user_id` with `provider`, connected now, expiring in an hour,
/// never refreshed, checked or used.
#[must_use]
pub fn integration(user_id: impl Into<Uuid>, provider: &str) -> IntegrationFixture {
    let at = now();
    IntegrationFixture {
        id: Uuid::now_v7(),
        user_id: user_id.into(),
        provider: provider.to_owned(),
        status: "active".to_owned(),
        account_id: None,
        account_email: None,
        scopes: json!([]),
        expires_at: Some(at + Duration::hours(1)),
        last_checked_at: None,
        every_column_set: false,
        at,
    }
}

/// An integration row to be: see [`integration`].
#[derive(Clone, Debug)]
pub struct IntegrationFixture {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub status: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Every optional column set to a distinct value (see [`Self::every_column_set`]).
    pub every_column_set: bool,
    /// `connected_at`, `created_at` and `updated_at`.
    pub at: DateTime<Utc>,
}

impl IntegrationFixture {
    #[must_use]
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// The provider's account id and email.
    #[must_use]
    pub fn account(mut self, id: &str, email: &str) -> Self {
        self.account_id = Some(id.to_owned());
        self.account_email = Some(email.to_owned());
        self
    }

    #[must_use]
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = json!(scopes);
        self
    }

    #[must_use]
    pub fn expires_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = at;
        self
    }

    #[must_use]
    pub fn last_checked_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.last_checked_at = at;
        self
    }

    /// Connected (created, updated) at `at`; expiring an hour later.
    #[must_use]
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self.expires_at = Some(at + Duration::hours(1));
        self
    }

    /// Every optional timestamp, the error and the failure count set, each timestamp a
    /// different minute after `at`, so a column read from the wrong position shows.
    #[must_use]
    pub fn every_column_set(mut self) -> Self {
        self.every_column_set = true;
        self
    }

    /// The row, for tests that insert it themselves.
    #[must_use]
    pub fn row(&self) -> integrations::ActiveModel {
        let now = self.at;
        let full = self.every_column_set;
        let at = |m: i64| full.then(|| now + Duration::minutes(m));
        integrations::ActiveModel {
            id: Set(self.id),
            user_id: Set(self.user_id),
            provider: Set(self.provider.clone()),
            status: Set(self.status.clone()),
            account_id: Set(self.account_id.clone()),
            account_email: Set(self.account_email.clone()),
            scopes: Set(self.scopes.clone()),
            connected_at: Set(if full { at(1) } else { Some(now) }),
            expires_at: Set(if full { at(2) } else { self.expires_at }),
            last_refreshed_at: Set(at(3)),
            last_refresh_attempt_at: Set(at(4)),
            last_checked_at: Set(if full { at(5) } else { self.last_checked_at }),
            last_used_at: Set(at(6)),
            last_error: Set(full.then(|| "none yet".to_owned())),
            refresh_failures: Set(if full { 7 } else { 0 }),
            refresh_lease_until: Set(at(8)),
            refresh_not_before: Set(at(9)),
            created_at: Set(now),
            updated_at: Set(if full {
                now + Duration::minutes(10)
            } else {
                now
            }),
        }
    }

    /// Inserts the row; returns the integration's id.
    ///
    /// # Panics
    /// When the insert fails (a test's setup is broken).
    pub async fn insert(self, db: &impl ConnectionTrait) -> Uuid {
        self.row()
            .insert(db)
            .await
            .expect("fixture integration is inserted");
        self.id
    }

    /// Inserts the row with what a connection leaves behind that deleting a user must
    /// remove: a (fake) sealed refresh token and a pending OAuth state. Returns the id.
    ///
    /// # Panics
    /// When an insert fails.
    pub async fn insert_with_credentials(self, db: &impl ConnectionTrait) -> Uuid {
        let (id, user_id, provider, now) = (self.id, self.user_id, self.provider.clone(), self.at);
        self.insert(db).await;
        integration_tokens::ActiveModel {
            integration_id: Set(id),
            kind: Set("refresh".to_owned()),
            user_id: Set(user_id),
            key_version: Set(1),
            ciphertext: Set(vec![1, 2, 3]),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .expect("fixture token is inserted");
        oauth_states::ActiveModel {
            state_hash: Set(format!("state-{id}")),
            user_id: Set(user_id),
            provider: Set(provider),
            redirect_uri: Set("https://app.example.com/cb".to_owned()),
            scopes: Set(json!([])),
            key_version: Set(1),
            pkce_verifier: Set(vec![4, 5, 6]),
            created_at: Set(now),
            expires_at: Set(now),
            used_at: Set(None),
        }
        .insert(db)
        .await
        .expect("fixture OAuth state is inserted");
        id
    }
}
