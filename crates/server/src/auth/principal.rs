//! Who is calling.

use std::sync::Arc;

use app::service_keys::VerifiedServiceKey;
use domain::user::ClerkUserId;

use crate::http::error::ApiError;

/// An authenticated caller, as the server describes it (rate limiting, logs). Its rights
/// are the capabilities the extractors mint from the [`app::access::Caller`] that
/// authentication recorded beside it.
#[derive(Clone, Debug)]
pub enum Principal {
    /// An end user with a verified Clerk session token.
    User(UserPrincipal),
    /// A back-end service with a valid service key.
    Service(ServicePrincipal),
}

/// An end user.
#[derive(Clone, Debug)]
pub struct UserPrincipal {
    clerk_user_id: ClerkUserId,
    session_id: Arc<str>,
    admin: bool,
}

impl UserPrincipal {
    /// The claims of a verified session token.
    pub(crate) fn new(clerk_user_id: ClerkUserId, session_id: Arc<str>, admin: bool) -> Self {
        Self {
            clerk_user_id,
            session_id,
            admin,
        }
    }

    /// The same session without its admin claim (no live user: authority needs one).
    pub(crate) fn without_admin(self) -> Self {
        Self {
            admin: false,
            ..self
        }
    }

    /// `sub` of the session token.
    #[must_use]
    pub fn clerk_user_id(&self) -> &ClerkUserId {
        &self.clerk_user_id
    }

    /// `sid` of the session token.
    #[must_use]
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The claim at `ADMIN_ROLE_CLAIM` equals `admin` (and the user is live).
    #[must_use]
    pub fn admin(&self) -> bool {
        self.admin
    }
}

/// A service key holder: the verified key itself, shared with the [`app::access::Caller`]
/// minted beside it (its id, name and permissions through `Deref`).
#[derive(Clone, Debug)]
pub struct ServicePrincipal(Arc<VerifiedServiceKey>);

impl From<Arc<VerifiedServiceKey>> for ServicePrincipal {
    fn from(key: Arc<VerifiedServiceKey>) -> Self {
        Self(key)
    }
}

impl std::ops::Deref for ServicePrincipal {
    type Target = VerifiedServiceKey;

    fn deref(&self) -> &VerifiedServiceKey {
        &self.0
    }
}

/// Credentials were sent but are not valid; kept so extractors can say why (401).
#[derive(Clone, Debug)]
pub struct AuthFailure(pub &'static str);

/// Credentials were sent but carry no authority for a reason other than being invalid
/// (a deleted account, a cookie write from a foreign origin): extractors answer with this
/// error instead of a principal. Public routes ignore it, as they ignore [`AuthFailure`].
#[derive(Clone, Debug)]
pub struct Refused(pub ApiError);

/// The live user a user principal speaks for, as read while authenticating (extractors
/// reuse it instead of reading the caller's row again).
#[derive(Clone, Debug)]
pub struct LiveUser(pub Arc<domain::user::User>);

impl Principal {
    /// The rate-limit key: a user's Clerk id or a service key's name.
    #[must_use]
    pub fn rate_limit_key(&self) -> &str {
        match self {
            Self::User(u) => u.clerk_user_id.as_str(),
            Self::Service(s) => s.name(),
        }
    }
}
