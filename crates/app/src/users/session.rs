//! Who is a principal (docs/security.md "Who is a principal"): a verified session token
//! speaks for a user only while that user is live. The role claim says what a user may do;
//! this says whether there is still a user to do it. An admin whose account is
//! soft-deleted keeps a valid Clerk session until it expires, and without this check would
//! keep every admin power meanwhile.
//!
//! [`App::session_user`] is the one place that decides. It also runs the sign-up race
//! (API.md "Authentication"): a valid session whose `sub` is not known yet is fetched from
//! Clerk and created (`crate::signup`) before the answer is `Unknown`.
//!
//! With a read replica (`DATABASE_READ_URL`), a read-only request of a user who holds no
//! admin power may be answered from the replica ([`SessionRead::MayLag`]): it changes
//! nothing and shows the user only their own data, as fresh as the replica is. Anything
//! else decides on the primary: writes (the user must be live now), admins (a deleted
//! admin must lose every power at once), and any doubt the replica leaves (no such user
//! there yet, deleted there, or the replica failing).

use domain::{audit::Actor, user::ClerkUserId};
use store::users::{self, Deleted, User};

use crate::{App, AppError, Ctx, RequestMeta, access::Caller, users::id_of};

/// What a verified session token says (the server checked its signature and claims).
#[derive(Clone, Debug)]
pub struct SessionClaims {
    /// `sub`.
    pub clerk_user_id: ClerkUserId,
    /// The admin claim equals `admin`.
    pub admin: bool,
}

/// Where a session's user may be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRead {
    /// On the primary: the request may write or the answer must be current.
    Current,
    /// On the replica when there is one: a read-only request (GET, HEAD). Admins are
    /// still read on the primary.
    MayLag,
}

/// What the service knows of a session's `sub`.
#[derive(Clone, Debug)]
pub enum SessionUser {
    /// A user who is not deleted: the session acts for them, as `caller`.
    Live {
        /// The authenticated caller (the user, with the admin claim).
        caller: Caller,
        /// The user's record, read on the primary (or, for [`SessionRead::MayLag`], on
        /// the replica).
        user: Box<User>,
    },
    /// The user is soft-deleted: the session carries no authority.
    Deleted,
    /// No user has this Clerk id (and Clerk's Backend API, when configured, knows none):
    /// the caller acts for no user and holds no admin power.
    Unknown(Caller),
}

impl App {
    /// The user a verified session speaks for. Read from the primary (a replica could
    /// still show a user deleted a moment ago as live) unless `read` allows the replica
    /// and the session holds no admin claim. `meta` is the request's, for the audit entry
    /// of a sign-up made here.
    ///
    /// # Errors
    /// When the database fails; `Unavailable` when Clerk must be asked and cannot be.
    #[tracing::instrument(name = "app session_users.session_user", skip_all)]
    pub async fn session_user(
        &self,
        claims: SessionClaims,
        meta: RequestMeta,
        read: SessionRead,
    ) -> Result<SessionUser, AppError> {
        if read == SessionRead::MayLag
            && !claims.admin
            && let Some(user) = self.live_on_replica(&claims).await
        {
            return Ok(Self::live(claims, user));
        }
        let sub = &claims.clerk_user_id;
        let found =
            users::find_by_clerk_id(self.db().current(), sub.as_str(), Deleted::Include).await?;
        let live = match found {
            Some(u) if u.deleted_at.is_none() => Some(u),
            Some(_) => return Ok(SessionUser::Deleted),
            None => {
                // The sign-up race may create the user here: its audit entry names the
                // session's user.
                let ctx = Ctx::new(Actor::user(sub.as_str()), meta);
                self.user_from_clerk(&ctx, sub).await?
            }
        };
        Ok(match live {
            Some(u) => Self::live(claims, u),
            None => SessionUser::Unknown(Caller::session(claims.clerk_user_id, None, false)),
        })
    }

    /// The session's user as the replica has it, when it shows them live. `None` sends the
    /// caller to the primary: no replica, not there (yet), deleted there (maybe restored
    /// since), or the replica failing (then marked down, see `store::Db::replica_failed`).
    async fn live_on_replica(&self, claims: &SessionClaims) -> Option<User> {
        let db = self.db();
        if !db.has_replica() {
            return None;
        }
        let sub = claims.clerk_user_id.as_str();
        match users::find_by_clerk_id(db.reader(), sub, Deleted::Include).await {
            Ok(found) => found.filter(|u| u.deleted_at.is_none()),
            Err(e) => {
                db.replica_failed(&e);
                tracing::debug!(error = %e, "session user not read on the replica");
                None
            }
        }
    }

    fn live(claims: SessionClaims, user: User) -> SessionUser {
        SessionUser::Live {
            caller: Caller::session(claims.clerk_user_id, Some(id_of(&user)), claims.admin),
            user: Box::new(user),
        }
    }
}
