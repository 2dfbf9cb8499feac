//! Who is calling.

use std::sync::Arc;

use domain::{ServiceKeyId, audit::Actor, permission::Permission, user::ClerkUserId};

use crate::http::error::ApiError;

/// An authenticated caller.
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
    /// `sub` of the session token.
    pub clerk_user_id: ClerkUserId,
    /// `sid` of the session token.
    pub session_id: Arc<str>,
    /// The claim at `ADMIN_ROLE_CLAIM` equals `admin`.
    pub admin: bool,
}

/// A service key holder.
#[derive(Clone, Debug)]
pub struct ServicePrincipal {
    /// The key's id.
    pub key_id: ServiceKeyId,
    /// The key's name (the audit `actor_id`).
    pub name: Arc<str>,
    /// What the key may do.
    pub permissions: Arc<[Permission]>,
    /// The providers and scope ceiling of the tokens it may get.
    pub limits: app::service_keys::KeyLimits,
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
pub struct LiveUser(pub Arc<store::users::User>);

impl Principal {
    /// Admin: a user with the admin claim, or a service key with `admin`.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        match self {
            Self::User(u) => u.admin,
            Self::Service(s) => s.permissions.contains(&Permission::Admin),
        }
    }

    /// True when a service key holds `p` (or `admin`); users hold no service permission.
    #[must_use]
    pub fn has_permission(&self, p: Permission) -> bool {
        match self {
            Self::User(_) => false,
            Self::Service(s) => {
                s.permissions.contains(&p) || s.permissions.contains(&Permission::Admin)
            }
        }
    }

    /// The audit actor.
    #[must_use]
    pub fn actor(&self) -> Actor {
        match self {
            Self::User(u) => Actor::user(u.clerk_user_id.as_str()),
            Self::Service(s) => Actor::service(&*s.name),
        }
    }

    /// The rate-limit key: a user's Clerk id or a service key's name.
    #[must_use]
    pub fn rate_limit_key(&self) -> &str {
        match self {
            Self::User(u) => u.clerk_user_id.as_str(),
            Self::Service(s) => &s.name,
        }
    }
}
