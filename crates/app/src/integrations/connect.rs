//! The hosted connect page (docs/connect-page.md): for front ends that don't handle OAuth
//! themselves. The owner asks for a connect session (a short-lived, single-use secret,
//! stored as its SHA-256); the user's browser opens the page with it, which uses it up and
//! starts the ordinary flow (state, PKCE) on the service's own redirect URI
//! (`<PUBLIC_URL>/connect/{provider}/callback`); the callback completes it exactly as
//! `complete_integration` does (same audit entry, event and sealing). What the page shows
//! is the server's business; this module only decides.

use chrono::{DateTime, Duration, Utc};
use domain::{UserId, audit::Actor};
use store::{
    connect_sessions::{self as repo, NewConnectSession},
    integrations::Integration,
    users::Deleted,
};
use url::Url;

pub use store::connect_sessions::Refused;

use crate::{App, AppError, Ctx, RequestMeta, access::AsOwner, integrations::state_hash};

/// How long a connect session waits for the browser to open it.
const SESSION_TTL_MINUTES: i64 = 10;

/// A connect session made for the owner: the page's URL, with the secret in it (so its
/// `Debug` shows the page without the query).
pub struct ConnectSession {
    pub url: Url,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for ConnectSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSession")
            .field("page", &self.url.path())
            .field("session", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What opening the page decided.
#[derive(Debug)]
pub enum PageStart {
    /// Send the browser to the provider's consent page.
    Redirect(Url),
    /// The session cannot be used (unknown, expired, used): say so, start nothing.
    Refused(Refused),
}

impl App {
    fn connect_base(&self) -> Result<&Url, AppError> {
        self.oauth_settings().public_url.as_ref().ok_or_else(|| {
            AppError::Conflict(
                "the connect page is not configured on this deployment (PUBLIC_URL)".to_owned(),
            )
        })
    }

    /// `<PUBLIC_URL>/connect/{provider}` plus `tail`.
    fn connect_url(&self, provider: &str, tail: &str) -> Result<Url, AppError> {
        let base = self.connect_base()?;
        let raw = format!(
            "{}/connect/{provider}{tail}",
            base.as_str().trim_end_matches('/')
        );
        Url::parse(&raw).map_err(|e| AppError::Internal(format!("connect URL: {e}")))
    }

    /// A connect session for the owner and `provider`: single use, ten minutes.
    ///
    /// # Errors
    /// `NotFound` for an unknown provider, `Conflict` for one not configured here or
    /// without `PUBLIC_URL`, `Validation` for bad scopes, storage.
    pub async fn create_connect_session(
        &self,
        who: &AsOwner,
        provider: &str,
        scopes: Option<Vec<String>>,
    ) -> Result<ConnectSession, AppError> {
        self.configured_provider(provider)?;
        if let Some(s) = &scopes {
            domain::text::Scopes::check("scopes", s)?;
        }
        let secret = crate::random::token::<32>()?;
        let mut url = self.connect_url(provider, "")?;
        url.query_pairs_mut().append_pair("session", &secret);
        let now = Utc::now();
        let expires_at = now + Duration::minutes(SESSION_TTL_MINUTES);
        repo::insert(
            self.db().writer(),
            NewConnectSession {
                session_hash: state_hash(&secret),
                user_id: who.user(),
                provider: provider.to_owned(),
                scopes,
                created_at: now,
                expires_at,
            },
        )
        .await?;
        Ok(ConnectSession { url, expires_at })
    }

    /// The browser opens the page: uses the session up (once, race-safe) and starts the
    /// flow on the page's own redirect URI.
    ///
    /// # Errors
    /// `NotFound`/`Conflict` for a provider unknown or not configured here, storage.
    pub async fn open_connect_page(
        &self,
        provider: &str,
        session: &str,
    ) -> Result<PageStart, AppError> {
        self.configured_provider(provider)?;
        let redirect = self.connect_url(provider, "/callback")?;
        let hash = state_hash(session);
        let opened = match repo::consume(self.db().writer(), &hash, provider, Utc::now()).await? {
            Ok(o) => o,
            Err(r) => return Ok(PageStart::Refused(r)),
        };
        // A user deleted since the session was made connects nothing.
        if store::users::find_by_id(self.db().writer(), opened.user_id, Deleted::Exclude)
            .await?
            .is_none()
        {
            return Ok(PageStart::Refused(Refused::Unknown));
        }
        let start = self
            .begin_flow(opened.user_id, provider, &redirect, opened.scopes)
            .await?;
        repo::attach_flow(self.db().writer(), &hash, &state_hash(&start.state)).await?;
        Ok(PageStart::Redirect(start.authorization_url))
    }

    /// The provider sent the browser back: completes the connection the page started,
    /// acting as its user (the audit entry names them, as when they complete it).
    ///
    /// # Errors
    /// `InvalidRequest` for a state no connect page started (or reused, expired);
    /// `Provider` when the provider refuses or fails; `NotFound` for a deleted user;
    /// storage.
    pub async fn finish_connect_page(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        meta: RequestMeta,
    ) -> Result<Integration, AppError> {
        let unknown = || {
            AppError::InvalidRequest(
                "the state is unknown, already used, expired, or not this provider's".to_owned(),
            )
        };
        let user: UserId = repo::flow_owner(self.db().writer(), &state_hash(state), provider)
            .await?
            .ok_or_else(unknown)?;
        let owner = store::users::find_by_id(self.db().writer(), user, Deleted::Exclude)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let ctx = Ctx::new(Actor::user(owner.clerk_user_id), meta);
        let grant = self
            .exchange_at_provider(user, provider, code, state)
            .await?;
        self.record_connection(&ctx, user, provider, grant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_session_secret() {
        let s = ConnectSession {
            url: Url::parse("https://users.example/connect/google?session=SECRET123").expect("url"),
            expires_at: Utc::now(),
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("SECRET123") && shown.contains("/connect/google"),
            "{shown}"
        );
    }
}
