//! Reading the audit log: filtered pages (newest first, cursor = the last id seen) and
//! counts by action or by day.

use chrono::{DateTime, Duration, Utc};
use store::audit::{AuditEntry, AuditFilter};

use crate::{App, AppError};

/// Filters and page of an audit listing.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<domain::UserId>,
    pub action: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// 1–100; default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of entries.
pub type AuditPage = crate::page::Page<AuditEntry>;

/// Who reads the entries about a user (docs/security.md "Who is a principal"). An admin
/// sees everything; the user themselves sees who acted on their data (the actor's name,
/// their own addresses), but not the IP addresses and user agents of other actors: those
/// are personal data of someone else (an admin, a support engineer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditView {
    /// Every field.
    Full,
    /// The owner with this Clerk user id.
    Owner(String),
}

impl AuditView {
    /// What the holder of `who` sees of the audit entries about its user, whose Clerk id
    /// is `clerk_user_id`: an admin every field, the owner not other actors' addresses.
    #[must_use]
    pub fn of(who: &crate::access::AsOwner, clerk_user_id: &str) -> Self {
        if who.is_admin() {
            Self::Full
        } else {
            Self::Owner(clerk_user_id.to_owned())
        }
    }

    /// Blanks what this viewer may not see: `ip` and `user_agent` of entries whose actor is
    /// not the owner. The entry's hashes are left as stored (they describe the stored row).
    pub fn apply(&self, entries: &mut [AuditEntry]) {
        let Self::Owner(me) = self else {
            return;
        };
        for e in entries {
            let own = e.actor_type == "user" && e.actor_id.as_deref() == Some(me.as_str());
            if !own {
                e.ip = None;
                e.user_agent = None;
            }
        }
    }
}

/// The audit list's page size.
const AUDIT_LIMIT: crate::page::PageLimit = crate::page::PageLimit {
    default: 50,
    max: 100,
};

/// How `audit_stats` groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Action,
    Day,
}

impl App {
    /// Entries matching `q`, newest first.
    ///
    /// # Errors
    /// 422 for a bad filter value or limit, 400 for a bad cursor; storage failures.
    #[tracing::instrument(name = "app audit_query.list_audit", skip_all)]
    pub async fn list_audit(
        &self,
        _reader: &crate::access::AsAuditReader,
        q: AuditQuery,
    ) -> Result<AuditPage, AppError> {
        self.query_audit(q).await
    }

    /// [`Self::list_audit`] for the use cases that scope the query themselves.
    pub(crate) async fn query_audit(&self, q: AuditQuery) -> Result<AuditPage, AppError> {
        // A bad limit here is a 422 naming the field, as API.md's audit table has it.
        let limit = AUDIT_LIMIT
            .check(q.limit)
            .map_err(|_| domain::ValidationErrors::single("limit", "must be between 1 and 100"))?;
        if q.action
            .as_deref()
            .is_some_and(|a| domain::audit::AuditAction::parse(a).is_none())
        {
            return Err(
                domain::ValidationErrors::single("action", "is not a known audit action").into(),
            );
        }
        if q.actor_type
            .as_deref()
            .is_some_and(|t| !matches!(t, "user" | "service" | "system" | "webhook"))
        {
            return Err(domain::ValidationErrors::single(
                "actor_type",
                "must be one of user, service, system, webhook",
            )
            .into());
        }
        let before_id = q
            .cursor
            .as_deref()
            .map(crate::page::cursor_id)
            .transpose()?;
        let filter = AuditFilter {
            user_id: q.user_id,
            action: q.action,
            actor_type: q.actor_type,
            actor_id: q.actor_id,
            from: q.from,
            to: q.to,
            before_id,
        };
        // One more than asked tells whether another page exists.
        let items = store::audit::list(self.db().reader(), &filter, limit + 1).await?;
        Ok(AuditPage::from_overfetch(items, limit, |e| {
            e.id.to_string()
        }))
    }

    /// The entries about the user `who` is over (Clerk id `clerk_user_id`), newest first,
    /// as the holder of `who` may see them.
    ///
    /// # Errors
    /// As [`Self::list_audit`].
    #[tracing::instrument(name = "app audit_query.user_audit", skip_all)]
    pub async fn user_audit(
        &self,
        who: &crate::access::AsOwner,
        clerk_user_id: &str,
        limit: Option<u64>,
        cursor: Option<String>,
    ) -> Result<AuditPage, AppError> {
        let view = AuditView::of(who, clerk_user_id);
        let mut page = self
            .query_audit(AuditQuery {
                user_id: Some(who.user()),
                limit,
                cursor,
                ..AuditQuery::default()
            })
            .await?;
        view.apply(&mut page.items);
        Ok(page)
    }

    /// Counts over `[from, to)` (default: the last 30 days).
    ///
    /// # Errors
    /// 422 when `from` is not before `to`; storage failures.
    #[tracing::instrument(name = "app audit_query.audit_stats", skip_all)]
    pub async fn audit_stats(
        &self,
        _reader: &crate::access::AsAuditReader,
        group_by: GroupBy,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<(String, i64)>, AppError> {
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - Duration::days(30));
        if from >= to {
            return Err(domain::ValidationErrors::single("from", "must be before to").into());
        }
        let conn = self.db().reader();
        Ok(match group_by {
            GroupBy::Action => store::audit::count_by_action(conn, from, to).await?,
            GroupBy::Day => store::audit::count_by_day(conn, from, to).await?,
        })
    }
}
