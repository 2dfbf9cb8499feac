//! Service keys (the API keys of calling services): their use cases (here), verification
//! of a presented key (`verify`) and the in-process cache of verified keys (`cache`).
//!
//! Service keys: creation (the plaintext is returned once), listing, revocation, and the
//! verification every service request goes through.
//!
//! A key is `usk_` + 32 random bytes (base64url, no padding). Only its hex SHA-256 is
//! stored. Verification looks the hash up, then compares stored and computed hashes in
//! constant time. Verified keys are cached in-process ([`crate::service_keys::cache`]) so the
//! token-fetch hot path does not query the database per request; a revocation in any
//! process reaches every cache within `EPOCH_CHECK_INTERVAL` through the revocation epoch.
//!
//! A key may be limited to providers and a scope ceiling (`limits`), may expire, and may be
//! rotated (`rotate`): the previous secret's hash is kept with the time it stops verifying.
//! An expired key, or a previous secret past its grace, is refused like an unknown key;
//! each cached key carries the time it stops verifying, and a rotation moves the
//! revocation epoch so every process re-reads the old secret's new end.
//!
//! Verification comes in two steps so the server can refuse a flood of unknown keys before
//! it costs a query: [`App::check_service_key_cached`] (no query beyond the epoch check)
//! and [`App::look_up_service_key`] (the database lookup of a cache miss).

pub mod cache;
pub mod limits;
mod rotate;
mod verify;

use chrono::{DateTime, Utc};
use domain::{
    ServiceKeyId, ValidationErrors, audit::AuditAction, duration::Span, permission::Permission,
};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use self::{
    limits::KeyLimits,
    rotate::RotatedServiceKey,
    verify::{KeyCheck, PendingLookup, VerifiedServiceKey, looks_like_key},
};
use crate::{
    App, AppError, Ctx,
    audit::{AuditRecord, record},
};

/// Every service key starts with this.
pub const KEY_PREFIX: &str = "usk_";
/// `last_used_at` is written at most once per this interval per key.
const TOUCH_INTERVAL_SECS: i64 = 60;
/// Length of `usk_` + base64url of 32 bytes.
const KEY_LEN: usize = KEY_PREFIX.len() + 43;
/// Characters of the key kept for listings (`usk_` + 8).
const SHOWN_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;

/// A freshly created key in plaintext. Shown once; `Debug` never prints it.
pub struct ServiceKeySecret(String);

impl ServiceKeySecret {
    /// The key itself, for the one time it is shown.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ServiceKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKeySecret([redacted])")
    }
}

/// What is known about a key, without its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKeyInfo {
    pub id: ServiceKeyId,
    pub name: String,
    /// `usk_` and the next 8 characters.
    pub prefix: String,
    pub permissions: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Providers and scope ceiling (none: unlimited).
    pub limits: KeyLimits,
    /// When the key stops verifying (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// After a rotation: when the previous secret stops verifying.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Where a key stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    /// `active`, `expired` or `revoked`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl ServiceKeyInfo {
    /// Revoked, expired (at `now`) or active.
    #[must_use]
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// When the previous secret stops verifying, while it still does at `now`.
    #[must_use]
    pub fn grace_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous_valid_until.filter(|t| *t > now)
    }
}

/// What a new key may reach and for how long, beyond its permissions. Empty lists mean no
/// limit; `expires_in: None` means no expiry.
#[derive(Clone, Debug, Default)]
pub struct KeyOptions {
    /// Provider names the key may get tokens for.
    pub providers: Vec<String>,
    /// The scopes a token handed to the key may carry.
    pub scopes: Vec<String>,
    /// The key's lifetime from its creation.
    pub expires_in: Option<Span>,
}

/// A created key: its description and the plaintext, shown once.
#[derive(Debug)]
pub struct CreatedServiceKey {
    pub info: ServiceKeyInfo,
    pub key: ServiceKeySecret,
}

/// Validates a key name: 1–64 characters of `a-z 0-9 _ -`.
///
/// # Errors
/// A field error on `name`.
pub fn validate_name(name: &str) -> Result<(), ValidationErrors> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            "name",
            "must be 1 to 64 characters of a-z, 0-9, _ and -",
        ))
    }
}

/// Parses permission names; at least one, duplicates removed.
///
/// # Errors
/// A field error on `permissions` naming the unknown one.
pub fn parse_permissions<S: AsRef<str>>(names: &[S]) -> Result<Vec<Permission>, ValidationErrors> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let p = Permission::parse(n.as_ref().trim())
            .map_err(|e| ValidationErrors::single("permissions", e))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(ValidationErrors::single(
            "permissions",
            "at least one permission is required",
        ));
    }
    out.sort();
    Ok(out)
}

/// A new secret: the key, its stored hash and the prefix shown in listings.
fn new_secret() -> Result<(String, String, String), AppError> {
    let key = format!("{KEY_PREFIX}{}", crate::random::token::<32>()?);
    let hash = to_hex(&hash_key(&key));
    let prefix = key[..SHOWN_PREFIX_LEN].to_owned();
    Ok((key, hash, prefix))
}

/// `now + lifetime`; a lifetime must be more than zero.
fn expiry(now: DateTime<Utc>, lifetime: Span) -> Result<DateTime<Utc>, AppError> {
    if lifetime.is_zero() {
        return Err(ValidationErrors::single("expires_in", "must be more than zero").into());
    }
    Ok(now + span(lifetime))
}

/// A span as a chrono duration (spans are capped at about 100 years, so this fits).
fn span(s: Span) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s.as_secs()).unwrap_or(i64::MAX / 1_000))
}

fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn permissions_of(value: &serde_json::Value) -> Vec<Permission> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .filter_map(|s| match Permission::parse(s) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        tracing::warn!(permission = s, "ignoring unknown stored permission");
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn limits_of(row: &store::service_keys::ServiceKeyRow) -> KeyLimits {
    KeyLimits {
        providers: limits::from_json(row.providers.as_ref()).map(Into::into),
        scopes: limits::from_json(row.scope_ceiling.as_ref()).map(Into::into),
    }
}

fn info_of(row: store::service_keys::ServiceKeyRow) -> ServiceKeyInfo {
    ServiceKeyInfo {
        id: ServiceKeyId::from_uuid(row.id),
        permissions: permissions_of(&row.permissions),
        limits: limits_of(&row),
        expires_at: row.expires_at,
        previous_valid_until: row.previous_valid_until,
        name: row.name,
        prefix: row.key_prefix,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    }
}

impl App {
    /// Creates an unlimited key that never expires. The plaintext is in the answer and
    /// nowhere else.
    ///
    /// # Errors
    /// Validation of the name and permissions; conflict when the name is taken.
    pub async fn create_service_key<S: AsRef<str>>(
        &self,
        ctx: &Ctx,
        name: &str,
        permissions: &[S],
    ) -> Result<CreatedServiceKey, AppError> {
        self.create_limited_service_key(ctx, name, permissions, KeyOptions::default())
            .await
    }

    /// Creates a key with limits and an expiry. The plaintext is in the answer and nowhere
    /// else.
    ///
    /// # Errors
    /// Validation of the name, permissions, providers (known to the catalog), scopes and
    /// lifetime (more than zero); conflict when the name is taken.
    #[tracing::instrument(name = "app service_keys.create_service_key", skip_all)]
    pub async fn create_limited_service_key<S: AsRef<str>>(
        &self,
        ctx: &Ctx,
        name: &str,
        permissions: &[S],
        options: KeyOptions,
    ) -> Result<CreatedServiceKey, AppError> {
        validate_name(name)?;
        let permissions = parse_permissions(permissions)?;
        let providers =
            limits::parse_providers(&options.providers, |p| self.catalog().get(p).is_some())?;
        let scopes = limits::parse_scopes(&options.scopes)?;
        let now = Utc::now();
        let expires_at = options.expires_in.map(|d| expiry(now, d)).transpose()?;
        let (key, hash, prefix) = new_secret()?;
        let names: Vec<String> = permissions.iter().map(|p| p.as_str().to_owned()).collect();

        let txn = self.db().begin().await?;
        if store::service_keys::find_by_name(&txn, name)
            .await?
            .is_some()
        {
            return Err(AppError::Conflict(format!(
                "a service key named {name:?} already exists"
            )));
        }
        let row = store::service_keys::create(
            &txn,
            store::service_keys::NewServiceKey {
                id: ServiceKeyId::new().as_uuid(),
                name: name.to_owned(),
                key_hash: hash,
                key_prefix: prefix.clone(),
                permissions: names.clone(),
                created_at: now,
                providers: providers.clone(),
                scope_ceiling: scopes.clone(),
                expires_at,
            },
        )
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => {
                AppError::Conflict(format!("a service key named {name:?} already exists"))
            }
            other => AppError::Store(other),
        })?;
        record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::ServiceKeyCreated, None)
                .resource("service_key", name)
                .details(json!({
                    "permissions": names, "prefix": prefix, "providers": providers,
                    "scopes": scopes, "expires_at": expires_at,
                })),
        )
        .await?;
        txn.commit().await?;
        Ok(CreatedServiceKey {
            info: info_of(row),
            key: ServiceKeySecret(key),
        })
    }

    /// Every key, oldest first (revoked ones included, marked).
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(name = "app service_keys.list_service_keys", skip_all)]
    pub async fn list_service_keys(&self) -> Result<Vec<ServiceKeyInfo>, AppError> {
        Ok(store::service_keys::list(self.db().reader())
            .await?
            .into_iter()
            .map(info_of)
            .collect())
    }

    /// Revokes the named key; it is refused from now on: at once in this process, within
    /// `EPOCH_CHECK_INTERVAL` in every other (the revocation epoch moves in the same
    /// transaction). Revoking a revoked key changes nothing and is not audited again.
    ///
    /// # Errors
    /// Not found for an unknown name; database failures.
    #[tracing::instrument(name = "app service_keys.revoke_service_key", skip_all)]
    pub async fn revoke_service_key(
        &self,
        ctx: &Ctx,
        name: &str,
    ) -> Result<ServiceKeyInfo, AppError> {
        let now = Utc::now();
        let txn = self.db().begin().await?;
        let Some(row) = store::service_keys::revoke_by_name(&txn, name, now).await? else {
            return Err(AppError::NotFound("service key"));
        };
        let already = row.revoked_at.is_some();
        if !already {
            record(
                &txn,
                ctx,
                AuditRecord::new(AuditAction::ServiceKeyRevoked, None)
                    .resource("service_key", name),
            )
            .await?;
        }
        txn.commit().await?;
        self.forget_secrets_of(&row);
        let mut info = info_of(row);
        info.revoked_at.get_or_insert(now);
        Ok(info)
    }

    /// Drops this process's cached copies of both secrets of `row` (the other processes
    /// learn of the change through the epoch).
    fn forget_secrets_of(&self, row: &store::service_keys::ServiceKeyRow) {
        let hashes = [
            Some(row.key_hash.as_str()),
            row.previous_key_hash.as_deref(),
        ];
        for hash in hashes.into_iter().flatten().filter_map(from_hex) {
            self.service_key_cache().invalidate(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "billing-svc", "x_1", &"a".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a b", "é", "a.b", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions() {
        assert_eq!(
            parse_permissions(&["users:read", "tokens:read", "users:read"]).expect("valid"),
            vec![Permission::TokensRead, Permission::UsersRead]
        );
        assert!(parse_permissions(&["users:write"]).is_err());
        assert!(parse_permissions::<&str>(&[]).is_err());
    }

    #[test]
    fn hex_round_trip_and_shape() {
        let h = hash_key("usk_x");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert!(from_hex("zz").is_none());
        let key = format!("{KEY_PREFIX}{}", "A".repeat(43));
        assert!(looks_like_key(&key));
        assert!(!looks_like_key("usk_short"));
        assert!(!looks_like_key(&format!("xyz_{}", "A".repeat(43))));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = ServiceKeySecret("usk_secretvalue".to_owned());
        assert!(!format!("{s:?}").contains("secretvalue"));
    }
}
