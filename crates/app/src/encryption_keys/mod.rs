//! Encryption keys of the token vault: their status and the re-encryption of stored
//! ciphertexts under the active key version.
//!
//! Key rotation: which key versions the stored ciphertexts use, and re-encryption of the
//! ones under old versions in batches — idempotent and resumable (each batch commits on
//! its own; a row changed meanwhile is skipped, never overwritten).

use std::collections::{BTreeMap, HashSet};

use domain::audit::AuditAction;
use serde::Serialize;
use serde_json::json;
use store::ciphertexts::{self, Location, StoredCiphertext};
use vault::{Binding, TokenKind};

use crate::{App, AppError, Ctx, audit::AuditRecord};

/// What `keys status` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// The version new writes use.
    pub active_version: u32,
    /// Stored ciphertexts per key version (every keyring version listed, even at 0).
    pub ciphertexts_by_version: BTreeMap<String, u64>,
}

/// The outcome of one rotation run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// Ciphertexts re-encrypted under the active key.
    pub rotated: u64,
    /// Ciphertexts changed by someone else meanwhile (already on the active key).
    pub skipped: u64,
    /// Ciphertexts that could not be opened (unknown version or tampered); left as they are.
    pub failed: u64,
    /// Batches committed.
    pub batches: u64,
    /// True when no ciphertext under an old version is left (apart from failures).
    pub complete: bool,
}

/// What the `key_reencrypt` job did: nothing (no ciphertext under an inactive version)
/// or one bounded rotation run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ReencryptOutcome {
    Skipped {
        skipped: &'static str,
        active_version: u32,
    },
    Rotated {
        active_version: u32,
        under_inactive_versions_before: u64,
        rotated: u64,
        skipped: u64,
        failed: u64,
        complete: bool,
    },
}

impl App {
    /// Re-encrypts with the active key at most `max_batches` batches of `batch_size`
    /// ciphertexts, when any is under an inactive key version (each batch commits on its
    /// own, so an interrupted run resumes next time).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn reencrypt_inactive(
        &self,
        ctx: &Ctx,
        batch_size: u64,
        max_batches: u64,
    ) -> Result<ReencryptOutcome, AppError> {
        let status = self.key_status().await?;
        let active = status.active_version.to_string();
        let inactive_in_use: u64 = status
            .ciphertexts_by_version
            .iter()
            .filter(|(v, _)| **v != active)
            .map(|(_, n)| n)
            .sum();
        if inactive_in_use == 0 {
            return Ok(ReencryptOutcome::Skipped {
                skipped: "no ciphertext under an inactive key version",
                active_version: status.active_version,
            });
        }
        let report = self
            .rotate_keys(ctx, batch_size.max(1), Some(max_batches.max(1)))
            .await?;
        Ok(ReencryptOutcome::Rotated {
            active_version: status.active_version,
            under_inactive_versions_before: inactive_in_use,
            rotated: report.rotated,
            skipped: report.skipped,
            failed: report.failed,
            complete: report.complete,
        })
    }

    /// Rows per key version.
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(name = "app keys.key_status", skip_all)]
    pub async fn key_status(&self) -> Result<KeyStatus, AppError> {
        let counts = ciphertexts::count_by_version(self.db().reader()).await?;
        let mut by_version: BTreeMap<String, u64> = self
            .vault()
            .keyring()
            .versions()
            .map(|v| (v.to_string(), 0))
            .collect();
        for (v, n) in counts {
            by_version.insert(v.to_string(), n);
        }
        Ok(KeyStatus {
            active_version: self.vault().active_version(),
            ciphertexts_by_version: by_version,
        })
    }

    /// Re-encrypts ciphertexts under old key versions with the active key, `batch_size` at
    /// a time, stopping after `max_batches` when given (a job's time slice). Audited as
    /// `keys.rotated` with counts only.
    ///
    /// # Errors
    /// When the database fails; batches committed before stay committed.
    #[tracing::instrument(name = "app keys.rotate_keys", skip_all)]
    pub async fn rotate_keys(
        &self,
        ctx: &Ctx,
        batch_size: u64,
        max_batches: Option<u64>,
    ) -> Result<RotationReport, AppError> {
        let active = i32::try_from(self.vault().active_version())
            .map_err(|_| AppError::Internal("active key version out of range".to_owned()))?;
        let mut report = RotationReport::default();
        // Rows that cannot be opened stay behind; remember them so they are not re-read forever.
        let mut failed: HashSet<(Vec<u8>, i32)> = HashSet::new();
        loop {
            if max_batches.is_some_and(|m| report.batches >= m) {
                break;
            }
            let want = batch_size + failed.len() as u64;
            let rows = ciphertexts::not_on_version(self.db().writer(), active, want).await?;
            let todo: Vec<StoredCiphertext> = rows
                .into_iter()
                .filter(|r| !failed.contains(&(r.ciphertext.clone(), r.key_version)))
                .collect();
            if todo.is_empty() {
                report.complete = true;
                break;
            }
            let txn = self.db().begin().await?;
            for row in todo
                .into_iter()
                .take(usize::try_from(batch_size).unwrap_or(usize::MAX))
            {
                let kind = match &row.location {
                    Location::Token { kind, .. } if kind == "access" => TokenKind::Access,
                    Location::Token { .. } => TokenKind::Refresh,
                    Location::PkceVerifier { .. } => TokenKind::PkceVerifier,
                };
                let binding = Binding::new(row.user_id, &row.provider, kind);
                match self.vault().reseal(&row.ciphertext, &binding) {
                    Ok(Some(new)) => {
                        if ciphertexts::swap(&txn, &row, active, new).await? {
                            report.rotated += 1;
                        } else {
                            report.skipped += 1;
                        }
                    }
                    Ok(None) => report.skipped += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, key_version = row.key_version, "ciphertext cannot be re-encrypted; left under its old key");
                        report.failed += 1;
                        failed.insert((row.ciphertext.clone(), row.key_version));
                    }
                }
            }
            txn.commit().await?;
            report.batches += 1;
        }
        if report.rotated > 0 || report.failed > 0 {
            let txn = self.db().begin().await?;
            crate::audit::record(
                &txn,
                ctx,
                AuditRecord::new(AuditAction::KeysRotated, None)
                    .resource("keyring", active.to_string())
                    .outcome(if report.failed == 0 { "success" } else { "partial" })
                    .details(json!({"active_version": active, "rotated": report.rotated, "skipped": report.skipped, "failed": report.failed})),
            )
            .await?;
            txn.commit().await?;
        }
        Ok(report)
    }
}
