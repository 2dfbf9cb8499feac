//! Pseudonymization as a fact of the chain. `pseudonymized_at` and the personal fields are
//! not hashed (ADR 0005), so anyone with write access could rewrite an entry's actor, user,
//! IP or details and mark it pseudonymized. The purge therefore records what it replaced
//! as chained `audit.pseudonymized` entries: per entry its id, the names of the fields that
//! changed, its original digest (`before`, the chained `pii_digest`) and the digest of the
//! replacement fields (`after`). No personal value is kept, only digests.
//!
//! `audit verify` ([`Coverage`]) accepts a pseudonymized entry only when the last record
//! naming it matches it: `before` is its chained digest and `after` is the digest of the
//! fields it holds now. An entry pseudonymized twice (it named two purged users) is
//! covered by the second record.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::audit::AuditAction;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{
    Conn,
    audit::{AuditEntry, Pseudonymized},
};

use crate::{
    AppError, ChainBreak, Ctx,
    audit::{AuditRecord, stored_pii_digest},
};

/// Entries named per record: keeps one record's details small (about 40 KB).
const PER_RECORD: usize = 200;

/// One pseudonymized entry, as its record names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: i64,
    /// The personal fields whose values were replaced.
    pub fields: Vec<String>,
    /// The entry's `pii_digest`: the digest of the original fields.
    pub before: String,
    /// The digest of the fields that replaced them.
    pub after: String,
}

#[derive(Serialize, Deserialize)]
struct RecordDetails {
    entries: Vec<Change>,
}

/// Replaces the personal fields of each entry with its `Pseudonymized` and appends the
/// records naming them, in `conn` (the caller's transaction: the purge's). `subject` is
/// the purged user's pseudonym (the records' resource). Entries without a digest (v1) and
/// entries the replacement would not change are skipped. Returns how many changed.
///
/// # Errors
/// When the database fails: the caller's transaction must then roll back.
pub async fn pseudonymize<C: Conn>(
    conn: &C,
    ctx: &Ctx,
    subject: &str,
    entries: Vec<(AuditEntry, Pseudonymized)>,
    at: DateTime<Utc>,
) -> Result<u64, AppError> {
    let mut changes = Vec::new();
    for (e, p) in entries {
        let Some(before) = e.pii_digest.clone() else {
            continue;
        };
        let after = replaced(&e, &p);
        let fields = changed_fields(&e, &after);
        if fields.is_empty() && e.pseudonymized_at.is_some() {
            continue;
        }
        store::audit::pseudonymize(conn, e.id, p, at).await?;
        changes.push(Change {
            id: e.id,
            fields,
            before,
            after: stored_pii_digest(&after),
        });
    }
    let changed = changes.len() as u64;
    for chunk in changes.chunks(PER_RECORD) {
        let details = serde_json::to_value(RecordDetails {
            entries: chunk.to_vec(),
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let rec = AuditRecord::new(AuditAction::AuditPseudonymized, None)
            .resource("user", subject)
            .details(details);
        crate::audit::record(conn, ctx, rec).await?;
    }
    Ok(changed)
}

/// The entry as `store::audit::pseudonymize` leaves it.
fn replaced(e: &AuditEntry, p: &Pseudonymized) -> AuditEntry {
    AuditEntry {
        actor_id: p.actor_id.clone(),
        user_id: p.user_id,
        resource_id: p.resource_id.clone(),
        ip: None,
        user_agent: None,
        details: p.details.clone(),
        ..e.clone()
    }
}

fn changed_fields(old: &AuditEntry, new: &AuditEntry) -> Vec<String> {
    [
        ("actor_id", old.actor_id != new.actor_id),
        ("user_id", old.user_id != new.user_id),
        ("resource_id", old.resource_id != new.resource_id),
        ("ip", old.ip != new.ip),
        ("user_agent", old.user_agent != new.user_agent),
        ("details", old.details != new.details),
    ]
    .into_iter()
    .filter(|&(_, changed)| changed)
    .map(|(name, _)| name.to_owned())
    .collect()
}

/// What `audit verify` learns about pseudonymizations while it walks the chain: each
/// pseudonymized entry, then (later in the chain) the records naming it.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    pending: HashMap<i64, Pending>,
}

#[derive(Debug)]
struct Pending {
    /// Digest over (`before`, `after`) the entry's record must name; 32 bytes per entry
    /// keeps a walk over millions of pseudonymized entries small.
    expected: [u8; 32],
    /// The last record naming it, and whether it matched.
    last: Option<(i64, bool)>,
}

fn pair(before: &str, after: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((before.len() as u64).to_be_bytes());
    h.update(before.as_bytes());
    h.update(after.as_bytes());
    h.finalize().into()
}

impl Coverage {
    /// Looks at one entry of the walk (already checked against its hash).
    pub(crate) fn see(&mut self, e: &AuditEntry, first_id: i64) -> Result<(), ChainBreak> {
        if e.pseudonymized_at.is_some() {
            // A v1 entry has no digest: no record can cover it (the purge never touches one).
            let before = e.pii_digest.as_deref().unwrap_or("");
            let expected = pair(before, &stored_pii_digest(e));
            self.pending.insert(
                e.id,
                Pending {
                    expected,
                    last: None,
                },
            );
        }
        if e.action == AuditAction::AuditPseudonymized.as_str() {
            self.record(e, first_id)?;
        }
        Ok(())
    }

    fn record(&mut self, r: &AuditEntry, first_id: i64) -> Result<(), ChainBreak> {
        let details: RecordDetails =
            serde_json::from_value(r.details.clone()).map_err(|_| ChainBreak {
                id: r.id,
                reason: "pseudonymization record cannot be read".to_owned(),
            })?;
        for c in details.entries {
            if c.id >= r.id {
                return Err(ChainBreak {
                    id: r.id,
                    reason: format!("pseudonymization record names a later entry ({})", c.id),
                });
            }
            if c.id < first_id {
                continue; // Archived with its original; the archive file keeps both.
            }
            let Some(p) = self.pending.get_mut(&c.id) else {
                return Err(ChainBreak {
                    id: c.id,
                    reason: format!(
                        "recorded as pseudonymized by entry {} but it is not pseudonymized",
                        r.id
                    ),
                });
            };
            p.last = Some((r.id, pair(&c.before, &c.after) == p.expected));
        }
        Ok(())
    }

    /// After the walk: every pseudonymized entry must match its last record.
    pub(crate) fn finish(self) -> Result<(), ChainBreak> {
        let worst = self
            .pending
            .into_iter()
            .filter(|(_, p)| !matches!(p.last, Some((_, true))))
            .min_by_key(|(id, _)| *id);
        match worst {
            None => Ok(()),
            Some((id, Pending { last: None, .. })) => Err(ChainBreak {
                id,
                reason: "pseudonymized, but no pseudonymization record covers it (personal fields rewritten?)"
                    .to_owned(),
            }),
            Some((id, Pending { last: Some((r, _)), .. })) => Err(ChainBreak {
                id,
                reason: format!(
                    "personal fields do not match the pseudonymization recorded in entry {r}"
                ),
            }),
        }
    }
}
