//! Users who arrive before Clerk's `user.created` webhook (the sign-up race: the front end
//! calls with a valid session first) and users made by hand in local development. Both are
//! created exactly as the webhook creates them ([`create_user`]): one row however many
//! requests race (the unique Clerk id decides), an audit entry and a `user.created` event,
//! committed together. The later webhook then finds the user and is a no-op or an update.

use domain::{
    profile::PersonName,
    user::{ClerkUserId, Email},
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use store::users::{self, Deleted, User};

use crate::{
    App, AppError, Ctx,
    users::clerk::{ClerkProfile, ClerkUser, create_user},
    users::now,
};

/// Clerk's Backend API: where an unknown but validly signed `sub` is looked up.
#[derive(Clone)]
pub struct ClerkApi {
    base: url::Url,
    secret_key: SecretString,
}

impl ClerkApi {
    /// The API at `base` (`https://api.clerk.com`), called with `secret_key` (`sk_…`).
    #[must_use]
    pub fn new(base: url::Url, secret_key: SecretString) -> Self {
        Self { base, secret_key }
    }

    fn user_url(&self, clerk: &ClerkUserId) -> Result<url::Url, AppError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| AppError::Internal("CLERK_API_URL cannot carry a path".into()))?
            .pop_if_empty()
            .extend(["v1", "users", clerk.as_str()]);
        Ok(url)
    }
}

impl std::fmt::Debug for ClerkApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClerkApi")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// How a user came to be there.
#[derive(Clone, Debug)]
pub enum Provisioned {
    /// Made now.
    Created(User),
    /// It existed already (possibly soft-deleted; nothing was changed).
    Existing(User),
}

impl Provisioned {
    /// The user, whichever way.
    #[must_use]
    pub fn into_user(self) -> User {
        match self {
            Self::Created(u) | Self::Existing(u) => u,
        }
    }
}

/// What `dev user create` is given.
#[derive(Clone, Debug)]
pub struct DevUser {
    pub clerk_user_id: ClerkUserId,
    pub email: Email,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
}

impl App {
    /// Fetches unknown session users from Clerk's Backend API (the sign-up race).
    #[must_use]
    pub fn with_clerk_api(mut self, api: ClerkApi) -> Self {
        self.clerk_api = Some(std::sync::Arc::new(api));
        self
    }

    /// A session's `sub` that no user has yet: when the Clerk Backend API is configured,
    /// the user is fetched from Clerk and created (the sign-up race). `None` when Clerk is
    /// not configured or does not know the id.
    ///
    /// # Errors
    /// `Unavailable` when Clerk cannot be asked; storage failures.
    #[tracing::instrument(name = "app signup.user_from_clerk", skip_all)]
    pub(crate) async fn user_from_clerk(
        &self,
        ctx: &Ctx,
        clerk: &ClerkUserId,
    ) -> Result<Option<User>, AppError> {
        let Some(api) = self.clerk_api.as_deref() else {
            return Ok(None);
        };
        let Some(found) = self.fetch_clerk_user(api, clerk).await? else {
            return Ok(None);
        };
        let profile = found.profile()?;
        if profile.clerk != *clerk {
            return Err(AppError::Unavailable(
                "Clerk's Backend API answered with another user".into(),
            ));
        }
        let details = json!({ "source": "clerk", "via": "backend_api" });
        let user = self.provision(ctx, profile, details).await?.into_user();
        Ok(user.deleted_at.is_none().then_some(user))
    }

    /// Creates a user by hand, as a `user.created` webhook would (local development).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn dev_create_user(&self, ctx: &Ctx, u: DevUser) -> Result<Provisioned, AppError> {
        let profile = ClerkProfile {
            clerk: u.clerk_user_id,
            email: Some(u.email.as_str().to_owned()),
            first_name: u.first_name.map(|n| n.as_str().to_owned()),
            last_name: u.last_name.map(|n| n.as_str().to_owned()),
            image: None,
            clerk_updated_at: None,
        };
        self.provision(ctx, profile, json!({ "source": "dev_cli" }))
            .await
    }

    /// Creates the user unless its Clerk id is taken; a racing request that loses the
    /// insert reads the winner's row.
    async fn provision(
        &self,
        ctx: &Ctx,
        profile: ClerkProfile,
        details: Value,
    ) -> Result<Provisioned, AppError> {
        let clerk = profile.clerk.clone();
        let txn = self.db().begin().await?;
        if let Some(u) = users::find_by_clerk_id(&txn, clerk.as_str(), Deleted::Include).await? {
            return Ok(Provisioned::Existing(u));
        }
        match create_user(self, &txn, ctx, profile, now(), details).await {
            Ok(u) => {
                txn.commit().await?;
                Ok(Provisioned::Created(u))
            }
            Err(AppError::Store(e)) if e.is_unique_violation() => {
                drop(txn);
                users::find_by_clerk_id(self.db().writer(), clerk.as_str(), Deleted::Include)
                    .await?
                    .map(Provisioned::Existing)
                    .ok_or_else(|| {
                        AppError::Internal("a user lost its insert race to no one".into())
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// `GET {CLERK_API_URL}/v1/users/{id}`: `None` when Clerk does not know the id.
    async fn fetch_clerk_user(
        &self,
        api: &ClerkApi,
        clerk: &ClerkUserId,
    ) -> Result<Option<ClerkUser>, AppError> {
        let request = self
            .oauth_client
            .http()
            .get(api.user_url(clerk)?)
            .bearer_auth(api.secret_key.expose_secret())
            .build()
            .map_err(|e| AppError::Internal(format!("building the Clerk request: {e}")))?;
        let unreachable = |what: String| {
            tracing::warn!(error = %what, "Clerk's Backend API cannot be used for the sign-up race");
            AppError::Unavailable("Clerk's Backend API cannot be reached; try again".into())
        };
        let res = self
            .oauth_client
            .execute("clerk", "users_get", request)
            .await
            .map_err(|e| unreachable(format!("no answer: {}", e.without_url())))?;
        match res.status().as_u16() {
            200 => {
                let body = res.bytes().await.map_err(|e| unreachable(e.to_string()))?;
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|_| unreachable("its user object does not parse".into()))
            }
            404 => Ok(None),
            status => Err(unreachable(format!("it answered {status}"))),
        }
    }
}
