//! Audit retention: entries older than the retention period are written to a compressed
//! JSON-lines file (every field, hashes included, so the archived part stays verifiable on
//! its own), the file is synced to disk, and only then are they deleted. Only a contiguous
//! prefix of the chain is archived, so what stays in the database is still one chain whose
//! first `prev_hash` is the last archived hash. That id and hash are stored as the archive
//! anchor in the delete's transaction; `audit verify` starts there, so deleting the oldest
//! entries by hand is a break. A chain that does not verify is not archived: moving
//! tampered entries out of the database would hide the evidence.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use flate2::{Compression, write::GzEncoder};
use serde::Serialize;

use crate::{App, AppError};

/// What an archive run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    /// Entries moved to the file and deleted.
    pub entries: u64,
    /// The file written (none when nothing was old enough).
    pub file: Option<PathBuf>,
    /// First and last archived ids.
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    /// Hash of the last archived entry: the anchor of what remains.
    pub last_hash: Option<String>,
}

impl App {
    /// Archives the entries older than `cutoff` into `dir` and deletes them.
    ///
    /// # Errors
    /// When the file cannot be written (then nothing is deleted) or the database fails.
    #[tracing::instrument(name = "app audit_archive.archive_audit", skip_all)]
    pub async fn archive_audit(
        &self,
        cutoff: DateTime<Utc>,
        dir: &Path,
    ) -> Result<ArchiveReport, AppError> {
        const PAGE: u64 = 1000;
        if let Err(b) = self.verify_audit_chain().await? {
            return Err(AppError::Conflict(format!(
                "not archiving: the audit chain is broken at entry {}: {}",
                b.id, b.reason
            )));
        }
        let anchor = store::audit::archive_anchor(self.db().reader()).await?;
        let mut entries = Vec::new();
        let mut after = anchor.0;
        'pages: loop {
            let page = store::audit::after(self.db().current(), after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                // Stop at the first young entry: archive a prefix, never punch holes.
                if e.occurred_at >= cutoff {
                    break 'pages;
                }
                after = e.id;
                entries.push(e);
            }
        }
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(ArchiveReport::default());
        };
        let (first_id, last_id, last_hash) = (first.id, last.id, last.hash.clone());
        std::fs::create_dir_all(dir)
            .map_err(|e| AppError::Internal(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(format!("audit-{first_id:012}-{last_id:012}.jsonl.gz"));
        write_archive(&path, &entries)
            .map_err(|e| AppError::Internal(format!("writing {}: {e}", path.display())))?;
        let txn = self.db().begin().await?;
        let deleted =
            store::audit::archive_through(&txn, (anchor.0, &anchor.1), last_id, &last_hash).await?;
        txn.commit().await?;
        Ok(ArchiveReport {
            entries: deleted,
            file: Some(path),
            first_id: Some(first_id),
            last_id: Some(last_id),
            last_hash: Some(last_hash),
        })
    }
}

fn write_archive(path: &Path, entries: &[store::audit::AuditEntry]) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        id: i64,
        occurred_at: String,
        actor_type: &'a str,
        actor_id: Option<&'a str>,
        action: &'a str,
        user_id: Option<domain::UserId>,
        resource_type: Option<&'a str>,
        resource_id: Option<&'a str>,
        outcome: &'a str,
        ip: Option<&'a str>,
        user_agent: Option<&'a str>,
        request_id: Option<&'a str>,
        details: &'a serde_json::Value,
        prev_hash: &'a str,
        hash: &'a str,
        pii_digest: Option<&'a str>,
        pseudonymized_at: Option<String>,
    }
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp)?;
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::default());
    for e in entries {
        let line = Line {
            id: e.id,
            occurred_at: e
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor_type: &e.actor_type,
            actor_id: e.actor_id.as_deref(),
            action: &e.action,
            user_id: e.user_id,
            resource_type: e.resource_type.as_deref(),
            resource_id: e.resource_id.as_deref(),
            outcome: &e.outcome,
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            request_id: e.request_id.as_deref(),
            details: &e.details,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
            pii_digest: e.pii_digest.as_deref(),
            pseudonymized_at: e
                .pseudonymized_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        };
        serde_json::to_writer(&mut gz, &line)?;
        gz.write_all(b"\n")?;
    }
    let file = gz
        .finish()?
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    // On disk before the rows are deleted; the rename makes a half-written file impossible.
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
