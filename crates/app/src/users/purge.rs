//! The purge (the daily `purge_users` job): users soft-deleted longer than
//! `USER_RETENTION_DAYS` are deleted for good — their row and everything hanging off it,
//! ciphertexts included — and the audit entries that name them are pseudonymized, not deleted: the personal fields are replaced by a random
//! pseudonym (one per purged user, so their history stays readable as one person's) and
//! the chain still verifies (see `crate::audit`); each replacement is recorded in chained
//! `audit.pseudonymized` entries (`crate::audit::pseudonymize`). One transaction per
//! user: an interrupted run leaves every user either untouched or fully purged.

use chrono::{DateTime, Utc};
use domain::{UserId, audit::AuditAction};
use serde::Serialize;
use serde_json::json;
use store::audit::{AuditEntry, Pseudonymized};
use uuid::Uuid;

use crate::{App, AppError, Ctx, audit::AuditRecord};

/// What a purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub users_purged: u64,
    pub ciphertexts_deleted: u64,
    pub audit_entries_pseudonymized: u64,
    /// Entries written before pseudonymizable hashing existed: left as they are (changing
    /// them would break the chain).
    pub legacy_audit_entries_left: u64,
    /// Outgoing events about the purged users (their data names them), with deliveries.
    pub events_deleted: u64,
}

impl App {
    /// Purges every user soft-deleted before `cutoff`.
    ///
    /// # Errors
    /// When the database fails; users purged before stay purged.
    pub async fn purge_deleted_users(
        &self,
        ctx: &Ctx,
        cutoff: DateTime<Utc>,
    ) -> Result<PurgeReport, AppError> {
        const BATCH: u64 = 100;
        let mut report = PurgeReport::default();
        loop {
            let batch = store::users::deleted_before(self.db().writer(), cutoff, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for user in &batch {
                self.purge_one(ctx, user.id, cutoff, &mut report).await?;
            }
            if (batch.len() as u64) < BATCH {
                break;
            }
        }
        Ok(report)
    }

    async fn purge_one(
        &self,
        ctx: &Ctx,
        id: UserId,
        cutoff: DateTime<Utc>,
        report: &mut PurgeReport,
    ) -> Result<(), AppError> {
        let txn = self.db().begin().await?;
        // Re-read inside the transaction: a restore since the listing wins.
        let user = store::users::find_by_id(&txn, id, store::users::Deleted::Include).await?;
        let Some(user) = user.filter(|u| u.deleted_at.is_some_and(|d| d < cutoff)) else {
            return Ok(());
        };
        let Some(ciphertexts) = store::users::hard_delete(&txn, user.id).await? else {
            return Ok(());
        };
        let events = store::events::delete_for_user(&txn, user.id).await?;
        let pseudonym = Uuid::new_v4();
        let named = store::audit::personal_entries(&txn, user.id, &user.clerk_user_id).await?;
        let (legacy, entries) = replacements(named, user.id, &user.clerk_user_id, pseudonym);
        let pseudonymized = crate::audit::pseudonymize::pseudonymize(
            &txn,
            ctx,
            &pseudonym.to_string(),
            entries,
            Utc::now(),
        )
        .await?;
        crate::audit::record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::UserDeleted, None)
                .resource("user", pseudonym.to_string())
                .details(json!({"purged": true, "ciphertexts_deleted": ciphertexts, "audit_entries_pseudonymized": pseudonymized})),
        )
        .await?;
        txn.commit().await?;
        report.users_purged += 1;
        report.legacy_audit_entries_left += legacy;
        report.ciphertexts_deleted += ciphertexts;
        report.audit_entries_pseudonymized += pseudonymized;
        report.events_deleted += events;
        Ok(())
    }
}

/// What replaces the personal fields of each entry naming the purged user: `user_id`, and
/// an `actor_id`/`resource_id` naming them, become the pseudonym; details go (they may hold
/// names or addresses, and their facts are given up with them). Entries without a digest
/// (v1) are counted and left as they are.
fn replacements(
    named: Vec<AuditEntry>,
    user_id: UserId,
    clerk: &str,
    pseudonym: Uuid,
) -> (u64, Vec<(AuditEntry, Pseudonymized)>) {
    let uid = user_id.to_string();
    let is_them = |v: &Option<String>| v.as_deref().is_some_and(|v| v == uid || v == clerk);
    let (legacy, current): (Vec<_>, Vec<_>) =
        named.into_iter().partition(|e| e.pii_digest.is_none());
    let entries = current
        .into_iter()
        .map(|e| {
            let p = Pseudonymized {
                actor_id: if is_them(&e.actor_id) {
                    Some(format!("purged:{pseudonym}"))
                } else {
                    e.actor_id.clone()
                },
                user_id: e.user_id.map(|u| {
                    if u == user_id {
                        UserId::from_uuid(pseudonym)
                    } else {
                        u
                    }
                }),
                resource_id: if is_them(&e.resource_id) {
                    Some(pseudonym.to_string())
                } else {
                    e.resource_id.clone()
                },
                details: json!({"pseudonymized": true}),
            };
            (e, p)
        })
        .collect();
    (legacy.len() as u64, entries)
}
