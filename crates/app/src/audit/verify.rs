//! Walking the audit hash chain: the first entry must follow the stored archive anchor
//! (genesis while nothing was archived), every entry its predecessor (consecutive id,
//! `prev_hash` = the predecessor's hash), each must carry the hash of its own canonical
//! encoding, every pseudonymized entry must match the record of its pseudonymization, and
//! the chain head must point at the last entry. Modifying, deleting (at the start, middle
//! or end), reordering or quietly pseudonymizing entries breaks one of these.

use serde::Serialize;

use store::audit::AuditEntry;

use crate::{
    App, AppError,
    audit::pseudonymize::Coverage,
    audit::{personal_fields_intact, stored_hash},
};

/// A verified chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// The first entry in the database (above 1 after archiving).
    pub first_id: Option<i64>,
    /// The last entry.
    pub last_id: Option<i64>,
    /// True when older entries were archived: the chain starts at the stored anchor.
    pub anchored_at_archive: bool,
}

/// The first place the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The entry at which the chain breaks (for a missing tail: the head's id).
    pub id: i64,
    /// What is wrong there.
    pub reason: String,
}

impl App {
    /// Verifies the whole chain, reading in pages: from the archive anchor (or genesis) to
    /// the head, every entry's link and hash, and every pseudonymized entry against the
    /// record of its pseudonymization.
    ///
    /// # Errors
    /// When the database fails. A broken chain is `Ok(Err(ChainBreak))`.
    #[tracing::instrument(name = "app audit_verify.verify_audit_chain", skip_all)]
    pub async fn verify_audit_chain(&self) -> Result<Result<ChainReport, ChainBreak>, AppError> {
        const PAGE: u64 = 1000;
        let conn = self.db().reader();
        let anchor = store::audit::archive_anchor(conn).await?;
        let mut report = ChainReport {
            entries: 0,
            first_id: None,
            last_id: None,
            anchored_at_archive: anchor.0 > 0,
        };
        let mut coverage = Coverage::default();
        let mut prev = anchor.clone();
        loop {
            let page = store::audit::after(conn, prev.0, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                if let Err(b) = link(&e, &prev, &anchor) {
                    return Ok(Err(b));
                }
                if stored_hash(&e, &prev.1) != e.hash || !personal_fields_intact(&e) {
                    return Ok(Err(ChainBreak {
                        id: e.id,
                        reason: "content does not match its hash (modified)".to_owned(),
                    }));
                }
                if let Err(b) = coverage.see(&e, anchor.0 + 1) {
                    return Ok(Err(b));
                }
                report.first_id.get_or_insert(e.id);
                report.entries += 1;
                report.last_id = Some(e.id);
                prev = (e.id, e.hash);
            }
        }
        let (head_id, head_hash) = store::audit::head(conn).await?;
        if head_id != prev.0 || head_hash != prev.1 {
            return Ok(Err(ChainBreak {
                id: head_id,
                reason: format!(
                    "chain head points at entry {head_id} but the last entry is {} (entries removed from the end)",
                    prev.0
                ),
            }));
        }
        Ok(coverage.finish().map(|()| report))
    }
}

/// Checks that `e` follows `prev` (the previous entry, or the archive anchor for the
/// first one): consecutive id, `prev_hash` its hash.
fn link(e: &AuditEntry, prev: &(i64, String), anchor: &(i64, String)) -> Result<(), ChainBreak> {
    let at_start = prev == anchor;
    if e.id != prev.0 + 1 {
        let reason = if at_start {
            format!(
                "entries {}–{} are missing: the chain starts after entry {} ({})",
                prev.0 + 1,
                e.id - 1,
                prev.0,
                if prev.0 == 0 {
                    "genesis"
                } else {
                    "the archive anchor"
                }
            )
        } else {
            format!(
                "entry {} is missing or out of order (found {} after {})",
                prev.0 + 1,
                e.id,
                prev.0
            )
        };
        return Err(ChainBreak { id: e.id, reason });
    }
    if e.prev_hash != prev.1 {
        let what = match (at_start, prev.0) {
            (true, 0) => "the genesis hash",
            (true, _) => "the archive anchor's hash",
            _ => "the previous entry's hash",
        };
        return Err(ChainBreak {
            id: e.id,
            reason: format!("prev_hash does not match {what}"),
        });
    }
    Ok(())
}
