//! Users: the account use cases (here), who a session is (`session`), sign-up on first
//! sight and the dev user (`signup`), Clerk's webhooks and Backend API (`clerk`), and the
//! purge of users deleted long ago (`purge`).
//!
//! Users: lookup, profile updates, soft delete with its credential cascade, restore, the
//! admin search and the export. Each change commits with its audit entry.

pub mod clerk;
pub mod purge;
pub mod session;
pub mod signup;

use base64::Engine;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use domain::{
    UserId,
    audit::AuditAction,
    profile::ProfileUpdate,
    user::{ClerkUserId, UserRef},
};
use serde_json::json;
/// Whether a lookup sees soft-deleted users.
pub use store::users::Deleted;
use store::{
    Conn,
    audit::{AuditEntry, AuditFilter},
    users::{self, CredentialCascade, ExportRows, SearchCursor, User},
};

use crate::{
    App, AppError,
    access::{AsAdmin, AsOwner},
    audit::{AuditRecord, record},
    events::Event,
};

/// A user named by the service id or the Clerk id (`me` already resolved by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserKey {
    Id(UserId),
    Clerk(ClerkUserId),
}

impl UserKey {
    /// The key a path's [`UserRef`] names; `me` becomes `caller`'s Clerk id, or `None` when
    /// there is no calling user.
    #[must_use]
    pub fn from_ref(r: UserRef, caller: Option<&ClerkUserId>) -> Option<Self> {
        match r {
            UserRef::Id(id) => Some(Self::Id(id)),
            UserRef::Clerk(c) => Some(Self::Clerk(c)),
            UserRef::Me => caller.cloned().map(Self::Clerk),
        }
    }
}

/// One page of the admin search.
pub type UserPage = crate::page::Page<User>;

/// Everything held about one user.
#[derive(Clone, Debug)]
pub struct UserExport {
    pub user: User,
    pub rows: ExportRows,
    /// Audit entries about the user, newest first.
    pub audit: Vec<AuditEntry>,
}

/// Now, at the precision both backends keep (microseconds).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Removes what a deleted user must not keep: stored provider tokens, pending OAuth states;
/// their integrations become `disconnected`. Every deletion path (API, Clerk webhook,
/// purge) calls this inside its transaction; revoking the tokens at the providers belongs
/// here as well, before the rows go.
///
/// # Errors
/// When the database fails: the deletion must then roll back.
#[tracing::instrument(name = "app users.cascade_deletion", skip_all)]
pub(crate) async fn cascade_deletion<C: Conn>(
    conn: &C,
    user_id: UserId,
    at: DateTime<Utc>,
) -> Result<CredentialCascade, AppError> {
    Ok(users::delete_credentials(conn, user_id, at).await?)
}

/// Audit details of a deletion: what the cascade did (counts only).
pub(crate) fn cascade_details(c: &CredentialCascade) -> serde_json::Value {
    json!({
        "stored_tokens_deleted": c.tokens_deleted,
        "oauth_states_deleted": c.states_deleted,
        "integrations_disconnected": c.integrations_disconnected,
    })
}

fn user_id(u: &User) -> UserId {
    u.id
}

impl App {
    /// The user `key` names, if any (soft-deleted ones only with [`Deleted::Include`]),
    /// read from the primary: this read decides access (authorization, whether the user
    /// exists) or comes before a write.
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(name = "app users.find_user", skip_all)]
    pub async fn find_user(
        &self,
        key: &UserKey,
        deleted: Deleted,
    ) -> Result<Option<User>, AppError> {
        self.find_user_on(self.db().current(), key, deleted).await
    }

    /// [`App::find_user`] for a read that may lag (a `GET` of the profile or preferences):
    /// from the read replica when one is configured.
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(name = "app users.find_user_may_lag", skip_all)]
    pub async fn find_user_may_lag(
        &self,
        key: &UserKey,
        deleted: Deleted,
    ) -> Result<Option<User>, AppError> {
        self.find_user_on(self.db().reader(), key, deleted).await
    }

    async fn find_user_on(
        &self,
        conn: &impl Conn,
        key: &UserKey,
        deleted: Deleted,
    ) -> Result<Option<User>, AppError> {
        Ok(match key {
            UserKey::Id(id) => users::find_by_id(conn, *id, deleted).await?,
            UserKey::Clerk(c) => users::find_by_clerk_id(conn, c.as_str(), deleted).await?,
        })
    }

    /// Applies a partial profile update to a live user. No change, no write.
    ///
    /// # Errors
    /// `NotFound` when the user is unknown or deleted; storage failures.
    #[tracing::instrument(name = "app users.update_user", skip_all)]
    pub async fn update_user(
        &self,
        who: &AsOwner,
        update: ProfileUpdate,
    ) -> Result<User, AppError> {
        let (ctx, id) = (who.ctx(), who.user());
        let txn = self.db().begin().await?;
        let mut u = users::find_by_id(&txn, id, Deleted::Exclude)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let at = now();
        let mut fields: Vec<&'static str> = Vec::new();
        let mut set = |name: &'static str, slot: &mut Option<String>, v: Option<Option<String>>| {
            if let Some(v) = v
                && *slot != v
            {
                *slot = v;
                fields.push(name);
            }
        };
        set(
            "first_name",
            &mut u.first_name,
            update.first_name.map(|v| v.map(|n| n.as_str().to_owned())),
        );
        set(
            "last_name",
            &mut u.last_name,
            update.last_name.map(|v| v.map(|n| n.as_str().to_owned())),
        );
        set(
            "profile_image_url",
            &mut u.profile_image_url,
            update
                .profile_image_url
                .map(|v| v.map(|n| n.as_str().to_owned())),
        );
        set(
            "onboarding_step",
            &mut u.onboarding_step,
            update
                .onboarding_step
                .map(|v| v.map(|n| n.as_str().to_owned())),
        );
        if let Some(done) = update.onboarding_completed
            && done != u.onboarding_completed
        {
            u.onboarding_completed = done;
            u.onboarding_completed_at = done.then_some(at);
            fields.push("onboarding_completed");
        }
        if fields.is_empty() {
            return Ok(u);
        }
        u.updated_at = at;
        let u = users::update(&txn, u).await?;
        record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::UserUpdated, Some(id))
                .resource("user", id.to_string())
                .details(json!({ "fields": fields })),
        )
        .await?;
        self.emit(&txn, Event::user_updated(id, &u.clerk_user_id, &fields))
            .await?;
        txn.commit().await?;
        Ok(u)
    }

    /// Soft-deletes a live user and removes their credentials (see `cascade_deletion`).
    ///
    /// # Errors
    /// `NotFound` when the user is unknown or already deleted; storage failures.
    #[tracing::instrument(name = "app users.delete_user", skip_all)]
    pub async fn delete_user(&self, who: &AsOwner) -> Result<(), AppError> {
        let (ctx, id) = (who.ctx(), who.user());
        // Revoke at the providers first: network calls stay outside the transaction.
        let revocations = self.revoke_all_grants(id).await?;
        let txn = self.db().begin().await?;
        let at = now();
        let user = users::find_by_id(&txn, id, Deleted::Exclude)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        if !users::soft_delete(&txn, id, at).await? {
            return Err(AppError::NotFound("user"));
        }
        let cascade = cascade_deletion(&txn, id, at).await?;
        record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::UserDeleted, Some(id))
                .resource("user", id.to_string())
                .details({
                    let mut d = cascade_details(&cascade);
                    d["revocations"] = revocations;
                    d
                }),
        )
        .await?;
        self.emit(&txn, Event::user_deleted(id, &user.clerk_user_id))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Undoes a soft delete within `retention_days` of it.
    ///
    /// # Errors
    /// `NotFound` for an unknown user; `Conflict` when the user is not deleted or the
    /// retention window has passed; storage failures.
    #[tracing::instrument(name = "app users.restore_user", skip_all)]
    pub async fn restore_user(
        &self,
        admin: &AsAdmin,
        id: UserId,
        retention_days: u32,
    ) -> Result<User, AppError> {
        let ctx = admin.ctx();
        let txn = self.db().begin().await?;
        let mut u = users::find_by_id(&txn, id, Deleted::Include)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let deleted_at = u
            .deleted_at
            .ok_or_else(|| AppError::Conflict("the user is not deleted".to_owned()))?;
        let at = now();
        if deleted_at + Duration::days(i64::from(retention_days)) < at {
            return Err(AppError::Conflict(format!(
                "the user was deleted more than {retention_days} days ago and can no longer be restored"
            )));
        }
        if !users::restore(&txn, id, at).await? {
            return Err(AppError::Conflict("the user is not deleted".to_owned()));
        }
        record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::UserRestored, Some(id)).resource("user", id.to_string()),
        )
        .await?;
        // No event type of its own (API.md): subscribers see the user change back.
        self.emit(
            &txn,
            Event::user_updated(id, &u.clerk_user_id, &["deleted_at"]),
        )
        .await?;
        txn.commit().await?;
        u.deleted_at = None;
        u.updated_at = at;
        Ok(u)
    }

    /// Admin search, newest first. `cursor` comes from a previous page's `next_cursor`.
    ///
    /// # Errors
    /// `InvalidRequest` for a cursor this service did not issue; storage failures.
    #[tracing::instrument(name = "app users.search_users", skip_all)]
    pub async fn search_users(
        &self,
        _admin: &AsAdmin,
        q: Option<&str>,
        include_deleted: bool,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<UserPage, AppError> {
        let after = cursor.map(decode_cursor).transpose()?;
        let deleted = if include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        };
        let items = users::search(
            self.db().reader(),
            q,
            deleted,
            after,
            limit.saturating_add(1),
        )
        .await?;
        Ok(UserPage::from_overfetch(items, limit, encode_cursor))
    }

    /// Everything held about a user: profile, preferences and their history, integrations
    /// (without secrets) and the audit entries about them, as the caller may see them.
    /// `user` is the user `who` is over, as the caller read it.
    ///
    /// # Errors
    /// `Forbidden` when `user` is not the one `who` is over; storage failures.
    #[tracing::instrument(name = "app users.export_user", skip_all)]
    pub async fn export_user(&self, who: &AsOwner, user: User) -> Result<UserExport, AppError> {
        if user.id != who.user() {
            return Err(AppError::Forbidden(
                "you may export only your own user".to_owned(),
            ));
        }
        let view = crate::audit::query::AuditView::of(who, &user.clerk_user_id);
        let conn = self.db().reader();
        let rows = users::export_rows(conn, user.id).await?;
        let mut audit = Vec::new();
        let mut filter = AuditFilter {
            user_id: Some(user.id),
            ..AuditFilter::default()
        };
        const PAGE: u64 = 500;
        loop {
            let page = store::audit::list(conn, &filter, PAGE).await?;
            let full = page.len() as u64 == PAGE;
            filter.before_id = page.last().map(|e| e.id);
            audit.extend(page);
            if !full {
                break;
            }
        }
        view.apply(&mut audit);
        Ok(UserExport { user, rows, audit })
    }
}

/// The service id of a stored user.
#[must_use]
pub fn id_of(u: &User) -> UserId {
    user_id(u)
}

fn encode_cursor(u: &User) -> String {
    let raw = format!(
        "{}.{}",
        u.created_at.timestamp_micros(),
        u.id.as_uuid().simple()
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(s: &str) -> Result<SearchCursor, AppError> {
    let bad = || AppError::InvalidRequest("cursor is not a cursor of this list".to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok(SearchCursor {
        created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
        id: UserId::from_uuid(uuid::Uuid::parse_str(id).map_err(|_| bad())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = now();
        let u = User {
            id: UserId::new(),
            clerk_user_id: "user_a".into(),
            email: None,
            first_name: None,
            last_name: None,
            profile_image_url: None,
            onboarding_completed: false,
            onboarding_step: None,
            onboarding_completed_at: None,
            last_sign_in_at: None,
            clerk_updated_at: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let c = decode_cursor(&encode_cursor(&u)).expect("round trip");
        assert_eq!((c.created_at, c.id), (at, u.id));
        for bad in ["", "!!", "bm9wZQ", "MS54"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
