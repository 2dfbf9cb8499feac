//! Rotation: a key gets a new secret, shown once; the old one keeps verifying until the
//! grace period ends (zero: at once). Name, permissions, limits and expiry stay. Rotating
//! again while an earlier grace runs ends that earlier secret now: only one previous
//! secret is kept. Every process learns the old secret's end through the revocation epoch.

use chrono::{DateTime, Utc};
use domain::{audit::AuditAction, duration::Span};
use serde_json::json;

use super::{ServiceKeyInfo, ServiceKeySecret, info_of, new_secret, span};
use crate::{
    App, AppError, Ctx,
    audit::{AuditRecord, record},
};

/// A rotated key: its description, the new plaintext (shown once), and when the old
/// secret stops verifying.
#[derive(Debug)]
pub struct RotatedServiceKey {
    pub info: ServiceKeyInfo,
    pub key: ServiceKeySecret,
    pub old_valid_until: DateTime<Utc>,
}

impl App {
    /// Gives the named key a new secret; the current one keeps verifying for `grace`.
    /// Audited (`service_key.rotated`, prefixes and the grace's end, never a secret).
    ///
    /// # Errors
    /// Not found for an unknown or revoked name (a revoked key stays revoked); conflict
    /// when another rotation of the same key won the race; database failures.
    #[tracing::instrument(name = "app service_keys.rotate_service_key", skip_all)]
    pub async fn rotate_service_key(
        &self,
        ctx: &Ctx,
        name: &str,
        grace: Span,
    ) -> Result<RotatedServiceKey, AppError> {
        let now = Utc::now();
        let old_valid_until = now + span(grace);
        let (key, hash, prefix) = new_secret()?;
        let txn = self.db().begin().await?;
        let row = store::service_keys::find_by_name(&txn, name)
            .await?
            .filter(|r| r.revoked_at.is_none())
            .ok_or(AppError::NotFound("service key"))?;
        let applied = store::service_keys::rotate(
            &txn,
            store::service_keys::Rotation {
                id: row.id,
                current_hash: row.key_hash.clone(),
                new_hash: hash,
                new_prefix: prefix.clone(),
                previous_valid_until: old_valid_until,
            },
        )
        .await?;
        if !applied {
            return Err(AppError::Conflict(format!(
                "service key {name:?} was rotated or revoked meanwhile; try again"
            )));
        }
        record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::ServiceKeyRotated, None)
                .resource("service_key", name)
                .details(json!({
                    "old_prefix": row.key_prefix, "prefix": prefix,
                    "grace": grace.to_string(), "old_valid_until": old_valid_until,
                })),
        )
        .await?;
        txn.commit().await?;
        self.forget_secrets_of(&row);
        let mut info = info_of(row);
        info.prefix = prefix;
        info.previous_valid_until = Some(old_valid_until);
        Ok(RotatedServiceKey {
            info,
            key: ServiceKeySecret(key),
            old_valid_until,
        })
    }
}
