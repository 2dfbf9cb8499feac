//! Who is a principal (docs/security.md "Who is a principal"): a verified session token
//! speaks for a user only while that user is live. The role claim says what a user may do;
//! this says whether there is still a user to do it. An admin whose account is
//! soft-deleted keeps a valid Clerk session until it expires, and without this check would
//! keep every admin power meanwhile.
//!
//! [`App::session_user`] is the one place that decides. It also runs the sign-up race
//! (API.md "Authentication"): a valid session whose `sub` is not known yet is fetched from
//! Clerk and created (`crate::signup`) before the answer is `Unknown`.

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

/// What the service knows of a session's `sub`.
#[derive(Clone, Debug)]
pub enum SessionUser {
    /// A user who is not deleted: the session acts for them, as `caller`.
    Live {
        /// The authenticated caller (the user, with the admin claim).
        caller: Caller,
        /// The user's row, read on the primary.
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
    /// still show a user deleted a moment ago as live). `meta` is the request's, for the
    /// audit entry of a sign-up made here.
    ///
    /// # Errors
    /// When the database fails; `Unavailable` when Clerk must be asked and cannot be.
    #[tracing::instrument(name = "app session_users.session_user", skip_all)]
    pub async fn session_user(
        &self,
        claims: SessionClaims,
        meta: RequestMeta,
    ) -> Result<SessionUser, AppError> {
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
            Some(u) => SessionUser::Live {
                caller: Caller::session(claims.clerk_user_id, Some(id_of(&u)), claims.admin),
                user: Box::new(u),
            },
            None => SessionUser::Unknown(Caller::session(claims.clerk_user_id, None, false)),
        })
    }
}
