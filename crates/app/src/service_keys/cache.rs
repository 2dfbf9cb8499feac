//! The in-process cache of verified service keys, and how it learns of revocations made by
//! other processes (docs/security.md "Service-key revocation").
//!
//! Every entry is tagged with the revocation epoch it was loaded under. The epoch is a
//! counter in the database that every revocation moves in its own transaction. A cached
//! key is trusted only while the epoch, confirmed by a query that *started* less than
//! [`EPOCH_CHECK_INTERVAL`] ago, still equals its tag. So once a revocation has committed,
//! no process answers from a copy older than it for longer than that interval: the first
//! request after the interval runs the one-row query (the others wait for it, single
//! flight), sees the new epoch and drops the cache. An idle process queries nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::{AppError, service_keys::VerifiedServiceKey};

/// Longest time a confirmed epoch is trusted without asking the database again. The
/// revocation guarantee (2 s, API.md) is this plus one request's time.
pub const EPOCH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest time a verified key stays cached at all (bounds memory for keys not used).
pub const CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Entry {
    key: Arc<VerifiedServiceKey>,
    epoch: i64,
}

/// Verified keys by the SHA-256 of the key, with the epoch they are good under.
#[derive(Clone)]
pub(crate) struct KeyCache(Arc<Inner>);

struct Inner {
    keys: moka::sync::Cache<[u8; 32], Entry>,
    /// The epoch last read from the database.
    epoch: AtomicI64,
    /// Milliseconds after `base` at which the query that read `epoch` started, plus one
    /// (0: never confirmed).
    confirmed_at: AtomicU64,
    base: Instant,
    /// Single flight: one epoch query at a time per process.
    refresh: tokio::sync::Mutex<()>,
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Inner {
            keys: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
            epoch: AtomicI64::new(0),
            confirmed_at: AtomicU64::new(0),
            base: Instant::now(),
            refresh: tokio::sync::Mutex::new(()),
        }))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.0.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The epoch, when it was confirmed recently enough to trust cached keys.
    fn fresh_epoch(&self) -> Option<i64> {
        let confirmed = self.0.confirmed_at.load(Ordering::Acquire);
        let interval = u64::try_from(EPOCH_CHECK_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        (confirmed != 0 && self.now_ms() + 1 < confirmed + interval)
            .then(|| self.0.epoch.load(Ordering::Acquire))
    }

    /// The current epoch: the remembered one while fresh, else read from `conn` (one
    /// request at a time; the others wait and then use what it read). When it moved, every
    /// cached key is dropped.
    pub(crate) async fn current_epoch<C: store::Conn>(&self, conn: &C) -> Result<i64, AppError> {
        if let Some(e) = self.fresh_epoch() {
            return Ok(e);
        }
        let _single = self.0.refresh.lock().await;
        if let Some(e) = self.fresh_epoch() {
            return Ok(e);
        }
        // The time the query starts, not ends: what it reads is at least this recent.
        let started = self.now_ms();
        let epoch = store::service_keys::revocation_epoch(conn).await?;
        let before = self.0.epoch.swap(epoch, Ordering::AcqRel);
        self.0.confirmed_at.store(started + 1, Ordering::Release);
        if before != epoch {
            // Entries carry their epoch, so this only frees memory early.
            self.0.keys.invalidate_all();
        }
        Ok(epoch)
    }

    /// The cached key with this hash, if it was loaded under `epoch` and still verifies at
    /// `now` (expiry and rotation grace are in the entry, so they need no query; a rotation
    /// elsewhere moves the epoch, which makes this process re-read the old secret's end).
    pub(crate) fn get(
        &self,
        hash: &[u8; 32],
        epoch: i64,
        now: DateTime<Utc>,
    ) -> Option<Arc<VerifiedServiceKey>> {
        self.0
            .keys
            .get(hash)
            .filter(|e| e.epoch == epoch && e.key.is_valid_at(now))
            .map(|e| e.key)
    }

    /// Caches a key read from the database after `epoch` was read.
    pub(crate) fn insert(&self, hash: [u8; 32], key: Arc<VerifiedServiceKey>, epoch: i64) {
        self.0.keys.insert(hash, Entry { key, epoch });
    }

    /// Drops one key (revoked by this process).
    pub(crate) fn invalidate(&self, hash: &[u8; 32]) {
        self.0.keys.invalidate(hash);
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyCache({} entries, epoch {})",
            self.0.keys.entry_count(),
            self.0.epoch.load(Ordering::Relaxed)
        )
    }
}
