//! Who may do what, as values (lldap's access-control crate is the model). A use case
//! that acts for a caller takes the capability it needs — [`AsAdmin`], [`AsOwner`] (of one
//! user) or [`AsService<P>`] (a service key holding permission `P`) — so it cannot run
//! unless someone proved that right.
//!
//! Only authentication makes a [`Caller`]: [`App::session_user`](crate::App::session_user)
//! for a verified session of a live user, and service-key verification
//! ([`App::check_service_key_cached`](crate::App::check_service_key_cached) /
//! [`App::look_up_service_key`](crate::App::look_up_service_key)) for a key, whose
//! [`VerifiedServiceKey`] becomes a `Caller` with `Caller::from`. Every
//! capability is minted from a `Caller` (the server's extractors do it per request, with
//! the request's meta) and has no public constructor, so nothing outside this crate can
//! forge one:
//!
//! ```compile_fail
//! // A handler cannot make itself an admin: the fields are private.
//! let _ = app::access::AsAdmin { ctx: app::Ctx::system("x") };
//! ```
//!
//! ```compile_fail
//! // Nor claim a session it did not verify: only `App::session_user` makes one.
//! let sub = domain::user::ClerkUserId::parse("user_1").unwrap();
//! let _ = app::access::Caller::session(sub, Some(domain::UserId::new()), true);
//! ```
//!
//! ```compile_fail
//! // Nor a service key it did not verify.
//! let key = app::service_keys::VerifiedServiceKey::new(
//!     domain::ServiceKeyId::new(),
//!     "svc",
//!     vec![domain::permission::Permission::Admin],
//! );
//! ```
//!
//! ```compile_fail
//! // Nor a context that names a user.
//! let _ = app::Ctx { actor: domain::audit::Actor::user("user_1"), meta: Default::default() };
//! ```
//!
//! What it can do is ask a caller authentication made:
//!
//! ```
//! fn admin_of(caller: &app::access::Caller) -> Option<app::access::AsAdmin> {
//!     caller.as_admin(app::RequestMeta::default())
//! }
//! ```
//!
//! Jobs and the CLI act as the service itself, through [`Ctx::system`].

use std::{marker::PhantomData, sync::Arc};

use domain::{UserId, audit::Actor, permission::Permission, user::ClerkUserId};

use crate::{Ctx, RequestMeta, service_keys::VerifiedServiceKey};

/// An authenticated caller, as authentication found it. Made only by this crate's
/// authentication entry points; cheap to clone.
#[derive(Clone, Debug)]
pub struct Caller(Who);

#[derive(Clone, Debug)]
enum Who {
    /// A verified session: the live user it speaks for (none before sign-up completes),
    /// and whether its admin claim counts (only for a live user).
    Session {
        clerk_user_id: ClerkUserId,
        user: Option<UserId>,
        admin: bool,
    },
    Service(Arc<VerifiedServiceKey>),
}

impl Caller {
    /// A session of `clerk_user_id`, acting for `user` when it is live.
    pub(crate) fn session(clerk_user_id: ClerkUserId, user: Option<UserId>, admin: bool) -> Self {
        Self(Who::Session {
            clerk_user_id,
            user,
            // Authority needs a live user: a session without one holds no admin power.
            admin: admin && user.is_some(),
        })
    }

    /// The audit actor.
    #[must_use]
    pub fn actor(&self) -> Actor {
        match &self.0 {
            Who::Session { clerk_user_id, .. } => Actor::user(clerk_user_id.as_str()),
            Who::Service(k) => Actor::service(k.name()),
        }
    }

    /// Admin: a live user with the admin claim, or a service key with `admin`.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        match &self.0 {
            Who::Session { admin, .. } => *admin,
            Who::Service(k) => k.permits(Permission::Admin),
        }
    }

    /// The live user a session speaks for (a service key speaks for no one).
    #[must_use]
    pub fn user(&self) -> Option<UserId> {
        match &self.0 {
            Who::Session { user, .. } => *user,
            Who::Service(_) => None,
        }
    }

    /// The Clerk id of a session (a service key has none).
    #[must_use]
    pub fn clerk_user_id(&self) -> Option<&ClerkUserId> {
        match &self.0 {
            Who::Session { clerk_user_id, .. } => Some(clerk_user_id),
            Who::Service(_) => None,
        }
    }

    fn ctx(&self, meta: RequestMeta) -> Ctx {
        Ctx::new(self.actor(), meta)
    }

    /// The admin capability, when this caller is an admin.
    #[must_use]
    pub fn as_admin(&self, meta: RequestMeta) -> Option<AsAdmin> {
        self.is_admin().then(|| AsAdmin {
            ctx: self.ctx(meta),
        })
    }

    /// The right to read the whole audit log: an admin, or a key with `audit:read`.
    #[must_use]
    pub fn as_audit_reader(&self, meta: RequestMeta) -> Option<AsAuditReader> {
        let reads = match &self.0 {
            Who::Session { admin, .. } => *admin,
            Who::Service(k) => k.permits(Permission::AuditRead),
        };
        reads.then(|| AsAuditReader {
            ctx: self.ctx(meta),
        })
    }

    /// The right to act for `user`, whose Clerk id is `clerk_user_id`: a session of that
    /// user (by the live user it resolved to, or by its `sub`: a user created after the
    /// session was checked is still its own), or an admin.
    #[must_use]
    pub fn as_owner(
        &self,
        user: UserId,
        clerk_user_id: &str,
        meta: RequestMeta,
    ) -> Option<AsOwner> {
        let admin = self.is_admin();
        let own = match &self.0 {
            Who::Session {
                clerk_user_id: sub,
                user: live,
                ..
            } => *live == Some(user) || sub.as_str() == clerk_user_id,
            Who::Service(_) => false,
        };
        (admin || own).then(|| AsOwner {
            user,
            admin,
            ctx: self.ctx(meta),
        })
    }

    /// The right of a service key holding `P` (or `admin`); a session holds none.
    #[must_use]
    pub fn as_service<P: RequiredPermission>(&self, meta: RequestMeta) -> Option<AsService<P>> {
        match &self.0 {
            Who::Service(k) if k.permits(P::PERMISSION) => Some(AsService {
                key: k.clone(),
                ctx: self.ctx(meta),
                permission: PhantomData,
            }),
            _ => None,
        }
    }
}

/// The right to read the whole audit log: an admin, or a service key with `audit:read`.
#[derive(Clone, Debug)]
pub struct AsAuditReader {
    ctx: Ctx,
}

impl AsAuditReader {
    /// The context the reader acts in (actor and request meta).
    #[must_use]
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }
}

/// The caller a verified key authenticates (only verification makes the key).
impl From<Arc<VerifiedServiceKey>> for Caller {
    fn from(key: Arc<VerifiedServiceKey>) -> Self {
        Self(Who::Service(key))
    }
}

/// The admin capability.
#[derive(Clone, Debug)]
pub struct AsAdmin {
    ctx: Ctx,
}

impl AsAdmin {
    /// The context the admin acts in (actor and request meta).
    #[must_use]
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// An admin may act for any user.
    #[must_use]
    pub fn over(&self, user: UserId) -> AsOwner {
        AsOwner {
            user,
            admin: true,
            ctx: self.ctx.clone(),
        }
    }
}

/// The right to act for one user: held by that user's session, or by an admin.
#[derive(Clone, Debug)]
pub struct AsOwner {
    user: UserId,
    admin: bool,
    ctx: Ctx,
}

impl AsOwner {
    /// The user this right is over.
    #[must_use]
    pub fn user(&self) -> UserId {
        self.user
    }

    /// True when an admin holds it (admins see more, e.g. every audit field).
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// The context the caller acts in (actor and request meta).
    #[must_use]
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }
}

/// A service key holding permission `P` (or `admin`).
#[derive(Debug)]
pub struct AsService<P> {
    key: Arc<VerifiedServiceKey>,
    ctx: Ctx,
    permission: PhantomData<fn() -> P>,
}

impl<P> Clone for AsService<P> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            ctx: self.ctx.clone(),
            permission: PhantomData,
        }
    }
}

impl<P> AsService<P> {
    /// The calling key.
    #[must_use]
    pub fn key(&self) -> &VerifiedServiceKey {
        &self.key
    }

    /// The context the key acts in (actor and request meta).
    #[must_use]
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }
}

/// A permission a use case needs from a service key (a zero-sized marker type).
pub trait RequiredPermission: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! permission_markers {
    ($($(#[$doc:meta])* $name:ident => $perm:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$perm;
            }
        )*
    };
}

permission_markers!(
    /// `tokens:read`
    TokensRead => TokensRead,
    /// `tokens:refresh`
    TokensRefresh => TokensRefresh,
    /// `users:read`
    UsersRead => UsersRead,
    /// `preferences:read`
    PreferencesRead => PreferencesRead,
    /// `integrations:read`
    IntegrationsRead => IntegrationsRead,
    /// `audit:read`
    AuditRead => AuditRead,
    /// `admin`
    AdminPerm => Admin,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: Option<UserId>, admin: bool) -> Caller {
        Caller::session(ClerkUserId::parse("user_a").expect("id"), user, admin)
    }

    #[test]
    fn a_session_owns_only_its_user_and_an_admin_claim_needs_a_live_user() {
        let me = UserId::new();
        let other = UserId::new();
        let s = session(Some(me), false);
        assert!(s.as_owner(me, "user_a", RequestMeta::default()).is_some());
        assert!(
            s.as_owner(other, "user_b", RequestMeta::default())
                .is_none()
        );
        assert!(s.as_admin(RequestMeta::default()).is_none());
        assert!(s.as_service::<TokensRead>(RequestMeta::default()).is_none());
        let admin = session(Some(me), true);
        let over = admin
            .as_owner(other, "user_b", RequestMeta::default())
            .expect("admin");
        assert!(over.is_admin() && over.user() == other);
        assert!(
            session(None, true)
                .as_admin(RequestMeta::default())
                .is_none()
        );
    }

    #[test]
    fn a_key_serves_only_its_permissions() {
        let key = |perms: &[Permission]| {
            Caller::from(Arc::new(VerifiedServiceKey::new(
                domain::ServiceKeyId::new(),
                "svc",
                perms.to_vec(),
            )))
        };
        let reader = key(&[Permission::TokensRead]);
        assert!(
            reader
                .as_service::<TokensRead>(RequestMeta::default())
                .is_some()
        );
        assert!(
            reader
                .as_service::<TokensRefresh>(RequestMeta::default())
                .is_none()
        );
        assert!(reader.as_admin(RequestMeta::default()).is_none());
        assert!(
            reader
                .as_owner(UserId::new(), "user_b", RequestMeta::default())
                .is_none()
        );
        let admin = key(&[Permission::Admin]);
        assert!(
            admin
                .as_service::<TokensRefresh>(RequestMeta::default())
                .is_some()
        );
        assert!(admin.as_admin(RequestMeta::default()).is_some());
        let ctx = admin.as_admin(RequestMeta::default()).expect("admin");
        assert_eq!(ctx.ctx().actor(), &Actor::service("svc"));
    }
}
