//! Walking the audit hash chain: every entry must follow its predecessor (consecutive id,
//! `prev_hash` = the predecessor's hash) and carry the hash of its own canonical encoding;
//! the chain head must point at the last entry. Modifying, deleting or reordering entries
//! breaks one of these.

use serde::Serialize;

use crate::{
    App, AppError,
    audit::{personal_fields_intact, stored_hash},
};

/// The genesis hash: the `prev_hash` of entry 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A verified chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// The first entry in the database (above 1 after archiving).
    pub first_id: Option<i64>,
    /// The last entry.
    pub last_id: Option<i64>,
    /// True when older entries were archived: the first entry's `prev_hash` is the anchor.
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
    /// Verifies the whole chain, reading in pages.
    ///
    /// # Errors
    /// When the database fails. A broken chain is `Ok(Err(ChainBreak))`.
    #[tracing::instrument(name = "app audit_verify.verify_audit_chain", skip_all)]
    pub async fn verify_audit_chain(&self) -> Result<Result<ChainReport, ChainBreak>, AppError> {
        const PAGE: u64 = 1000;
        let conn = self.db().reader();
        let mut report = ChainReport {
            entries: 0,
            first_id: None,
            last_id: None,
            anchored_at_archive: false,
        };
        let mut prev: Option<(i64, String)> = None;
        loop {
            let after = prev.as_ref().map_or(0, |(id, _)| *id);
            let page = store::audit::after(conn, after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                let expected_prev = match &prev {
                    Some((pid, phash)) => {
                        if e.id != pid + 1 {
                            return Ok(Err(ChainBreak {
                                id: e.id,
                                reason: format!(
                                    "entry {} is missing or out of order (found {} after {pid})",
                                    pid + 1,
                                    e.id
                                ),
                            }));
                        }
                        phash.clone()
                    }
                    None => {
                        report.first_id = Some(e.id);
                        if e.id == 1 {
                            GENESIS.to_owned()
                        } else {
                            // Older entries were archived: this entry's link is the anchor.
                            report.anchored_at_archive = true;
                            e.prev_hash.clone()
                        }
                    }
                };
                if e.prev_hash != expected_prev {
                    return Ok(Err(ChainBreak {
                        id: e.id,
                        reason: "prev_hash does not match the previous entry's hash".to_owned(),
                    }));
                }
                if stored_hash(&e, &expected_prev) != e.hash || !personal_fields_intact(&e) {
                    return Ok(Err(ChainBreak {
                        id: e.id,
                        reason: "content does not match its hash (modified)".to_owned(),
                    }));
                }
                report.entries += 1;
                report.last_id = Some(e.id);
                prev = Some((e.id, e.hash));
            }
        }
        let (head_id, head_hash) = store::audit::head(conn).await?;
        let (last_id, last_hash) = prev.unwrap_or((0, GENESIS.to_owned()));
        if head_id != last_id || head_hash != last_hash {
            return Ok(Err(ChainBreak {
                id: head_id,
                reason: format!(
                    "chain head points at entry {head_id} but the last entry is {last_id} (entries removed from the end)"
                ),
            }));
        }
        Ok(Ok(report))
    }
}
