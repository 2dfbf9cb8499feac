//! Who is a principal (docs/security.md "Who is a principal"): a verified session token
//! speaks for a user only while that user is live. The role claim says what a user may do;
//! this says whether there is still a user to do it. An admin whose account is
//! soft-deleted keeps a valid Clerk session until it expires, and without this check would
//! keep every admin power meanwhile.
//!
//! [`App::session_user`] is the one place that decides. It also runs the sign-up race
//! (API.md "Authentication"): a valid session whose `sub` is not known yet is fetched from
//! Clerk and created (`crate::signup`) before the answer is `Unknown`.

use domain::user::ClerkUserId;
use store::users::{self, Deleted, User};

use crate::{App, AppError, Ctx};

/// What the service knows of a session's `sub`.
#[derive(Clone, Debug)]
pub enum SessionUser {
    /// A user who is not deleted: the session acts for them.
    Live(Box<User>),
    /// The user is soft-deleted: the session carries no authority.
    Deleted,
    /// No user has this Clerk id (and Clerk's Backend API, when configured, knows none).
    Unknown,
}

impl App {
    /// The user a verified session speaks for. Read from the primary (a replica could
    /// still show a user deleted a moment ago as live).
    ///
    /// # Errors
    /// When the database fails; `Unavailable` when Clerk must be asked and cannot be.
    #[tracing::instrument(name = "app session_users.session_user", skip_all)]
    pub async fn session_user(
        &self,
        ctx: &Ctx,
        sub: &ClerkUserId,
    ) -> Result<SessionUser, AppError> {
        let found =
            users::find_by_clerk_id(self.db().current(), sub.as_str(), Deleted::Include).await?;
        Ok(match found {
            Some(u) if u.deleted_at.is_none() => SessionUser::Live(Box::new(u)),
            Some(_) => SessionUser::Deleted,
            None => match self.user_from_clerk(ctx, sub).await? {
                Some(u) => SessionUser::Live(Box::new(u)),
                None => SessionUser::Unknown,
            },
        })
    }
}
