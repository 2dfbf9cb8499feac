//! Verifying a presented key, the path every service request takes: the cache first (no
//! query beyond the revocation-epoch check), then, for a miss, one lookup of the current or
//! previous secret's hash, compared again in constant time. [`VerifiedServiceKey`] is the
//! proof it produces; only this module makes one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{ServiceKeyId, permission::Permission};
use subtle::ConstantTimeEq;

use super::{
    KEY_LEN, KEY_PREFIX, KeyLimits, TOUCH_INTERVAL_SECS, from_hex, hash_key, limits_of,
    permissions_of, to_hex,
};
use crate::{App, AppError};

/// A key that verified: who is calling and what they may do. Only verification makes one
/// (its fields are private), so holding one is proof the key was presented and is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedServiceKey {
    id: ServiceKeyId,
    name: Arc<str>,
    permissions: Arc<[Permission]>,
    /// Providers and scope ceiling of the tokens it may get.
    limits: KeyLimits,
    /// When the presented secret stops verifying: the key's expiry, or for a rotated-out
    /// secret the end of its grace, whichever comes first (none: never).
    valid_until: Option<DateTime<Utc>>,
}

impl VerifiedServiceKey {
    /// An unlimited key that never expires (unit tests of the capabilities).
    #[cfg(test)]
    pub(crate) fn new(id: ServiceKeyId, name: &str, permissions: Vec<Permission>) -> Self {
        Self {
            id,
            name: Arc::from(name),
            permissions: permissions.into(),
            limits: KeyLimits::default(),
            valid_until: None,
        }
    }

    /// Still verifies at `now`.
    #[must_use]
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|t| now < t)
    }

    /// The key's id.
    #[must_use]
    pub fn id(&self) -> ServiceKeyId {
        self.id
    }

    /// The key's name (the audit `actor_id`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's name, shared.
    #[must_use]
    pub fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// What the key may do.
    #[must_use]
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// Providers and scope ceiling of the tokens it may get.
    #[must_use]
    pub fn limits(&self) -> &KeyLimits {
        &self.limits
    }

    /// When the presented secret stops verifying (none: never).
    #[must_use]
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.valid_until
    }

    /// True when the key holds `p` or `admin`.
    #[must_use]
    pub fn permits(&self, p: Permission) -> bool {
        self.permissions.contains(&p) || self.permissions.contains(&Permission::Admin)
    }
}

/// What the cache can say about a presented key without looking it up.
#[derive(Debug)]
pub enum KeyCheck {
    /// Not shaped like a service key: refused without a lookup.
    Malformed,
    /// Verified from the cache.
    Known(Arc<VerifiedServiceKey>),
    /// Needs a database lookup ([`App::look_up_service_key`]).
    NeedsLookup(PendingLookup),
}

/// A well-formed key the cache does not know: its hash and the epoch read before the
/// lookup (what a cached copy will be tagged with). `Debug` shows neither.
pub struct PendingLookup {
    hash: [u8; 32],
    epoch: i64,
}

impl std::fmt::Debug for PendingLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLookup([redacted])")
    }
}

/// True when `key` has the shape of a service key (checked before any lookup).
#[must_use]
pub fn looks_like_key(key: &str) -> bool {
    key.len() == KEY_LEN
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl App {
    /// Verifies a presented key: `None` when it is malformed, unknown or revoked. Both
    /// steps of [`Self::check_service_key_cached`] and [`Self::look_up_service_key`].
    ///
    /// # Errors
    /// Only when the database fails.
    pub async fn verify_service_key(
        &self,
        presented: &str,
    ) -> Result<Option<Arc<VerifiedServiceKey>>, AppError> {
        match self.check_service_key_cached(presented).await? {
            KeyCheck::Malformed => Ok(None),
            KeyCheck::Known(k) => Ok(Some(k)),
            KeyCheck::NeedsLookup(p) => self.look_up_service_key(p).await,
        }
    }

    /// What the cache says about a presented key. Costs no query except the revocation
    /// epoch check, at most once per `EPOCH_CHECK_INTERVAL` per process.
    ///
    /// # Errors
    /// When the epoch cannot be read (the database is down).
    // No span here: this runs on every service request, and a cache hit is a hash and a map
    // lookup, cheaper than the span itself (the span is kept for the database lookup).
    pub async fn check_service_key_cached(&self, presented: &str) -> Result<KeyCheck, AppError> {
        if !looks_like_key(presented) {
            return Ok(KeyCheck::Malformed);
        }
        let hash = hash_key(presented);
        let cache = self.service_key_cache();
        // Read before the key row (on a miss): a copy cached under this epoch is dropped by
        // any revocation that commits after the row was read.
        let epoch = cache.current_epoch(self.db().current()).await?;
        Ok(match cache.get(&hash, epoch, Utc::now()) {
            Some(hit) => KeyCheck::Known(hit),
            None => KeyCheck::NeedsLookup(PendingLookup { hash, epoch }),
        })
    }

    /// The key of a cache miss from the database, cached when found. On the primary: a
    /// replica might still show a key revoked a moment ago.
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(name = "app service_keys.verify_service_key", skip_all)]
    pub async fn look_up_service_key(
        &self,
        pending: PendingLookup,
    ) -> Result<Option<Arc<VerifiedServiceKey>>, AppError> {
        let PendingLookup {
            hash: computed,
            epoch,
        } = pending;
        let Some(row) =
            // The primary: a replica that lags behind a revocation would accept the key.
            store::service_keys::find_active_by_hash(self.db().current(), &to_hex(&computed))
                .await?
        else {
            return Ok(None);
        };
        let Some(verified) = verified_of(&row, &computed, Utc::now()) else {
            return Ok(None);
        };
        let verified = Arc::new(verified);
        self.service_key_cache()
            .insert(computed, verified.clone(), epoch);
        // Only on a cache miss, and the store skips it when written within the interval.
        if let Err(e) = store::service_keys::touch(
            self.db().writer(),
            row.id,
            Utc::now(),
            chrono::Duration::seconds(TOUCH_INTERVAL_SECS),
        )
        .await
        {
            tracing::warn!(error = %e, key = %row.name, "could not record service key use");
        }
        Ok(Some(verified))
    }
}

/// The key `row` verifies as for a secret hashing to `computed` at `now`: the current
/// secret while the key has not expired, the previous one also only within its grace.
fn verified_of(
    row: &store::service_keys::ServiceKeyRow,
    computed: &[u8; 32],
    now: DateTime<Utc>,
) -> Option<VerifiedServiceKey> {
    // The lookup matched on a hash; compare again in constant time so no code path
    // depends on a variable-time comparison of secret-derived bytes.
    let matches = |hex: Option<&str>| {
        let stored = hex.and_then(from_hex).unwrap_or([0u8; 32]);
        bool::from(stored.ct_eq(computed))
    };
    let valid_until = if matches(Some(&row.key_hash)) {
        row.expires_at
    } else if matches(row.previous_key_hash.as_deref()) {
        // A previous secret without an end would verify forever: refuse it instead.
        let grace = row.previous_valid_until?;
        Some(row.expires_at.map_or(grace, |e| e.min(grace)))
    } else {
        return None;
    };
    let verified = VerifiedServiceKey {
        id: ServiceKeyId::from_uuid(row.id),
        name: Arc::from(row.name.as_str()),
        permissions: permissions_of(&row.permissions).into(),
        limits: limits_of(row),
        valid_until,
    };
    verified.is_valid_at(now).then_some(verified)
}
