//! Sealing and opening tokens with per-user AES-256-GCM keys.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::AeadInOut as _;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use moka::sync::Cache;
use secrecy::ExposeSecret as _;
use uuid::Uuid;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::binding::Binding;
use crate::derive::derive_user_key;
use crate::error::VaultError;
use crate::format::{self, HEADER_LEN, MIN_CIPHERTEXT_LEN};
use crate::keyring::Keyring;
use crate::secret::SecretBytes;

/// Default bound on cached per-user ciphers (one per user and key version).
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

// The cache holds constructed ciphers, which contain the expanded AES key. This fails to
// compile unless aes-gcm's `zeroize` feature makes them wipe themselves when dropped
// (which moka does on eviction, once no in-flight seal/open still holds the Arc).
const _: fn() = assert_zeroize_on_drop::<Aes256Gcm>;
fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

/// Seals and opens tokens. Cheap to clone: all clones share one keyring and one cache.
///
/// Each (key version, user) pair gets its own AES-256-GCM key from
/// [`derive_user_key`]; constructed ciphers are kept in a bounded cache so a hot user
/// pays the derivation once.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    keyring: Keyring,
    // Ciphers rather than raw keys: building one (AES key schedule + GHASH key) is
    // measurable on every call, see benches/vault.rs and ADR 0001.
    ciphers: Cache<(u32, Uuid), Arc<Aes256Gcm>>,
    capacity: u64,
}

impl Vault {
    /// A vault over `keyring` caching up to [`DEFAULT_CACHE_CAPACITY`] per-user ciphers.
    #[must_use]
    pub fn new(keyring: Keyring) -> Self {
        Self::with_cache_capacity(keyring, DEFAULT_CACHE_CAPACITY)
    }

    /// A vault over `keyring` caching up to `capacity` per-user ciphers (0 disables caching).
    #[must_use]
    pub fn with_cache_capacity(keyring: Keyring, capacity: u64) -> Self {
        let ciphers = Cache::builder().max_capacity(capacity).build();
        Self {
            inner: Arc::new(Inner {
                keyring,
                ciphers,
                capacity,
            }),
        }
    }

    /// The keyring this vault seals and opens with.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The key version [`seal`](Self::seal) uses.
    #[must_use]
    pub fn active_version(&self) -> u32 {
        self.inner.keyring.active_version()
    }

    /// Encrypts `plaintext` under the active key version, bound to `binding`.
    ///
    /// Output: `0x01 | key_version (u32 BE) | nonce (12 random bytes) | ciphertext+tag`.
    ///
    /// # Panics
    /// If the operating system's random number generator fails, or the plaintext exceeds
    /// AES-GCM's 64 GiB limit.
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], binding: &Binding<'_>) -> Vec<u8> {
        let started = std::time::Instant::now();
        let out = self.seal_untimed(plaintext, binding);
        crate::metrics::observe("seal", true, started);
        out
    }

    fn seal_untimed(&self, plaintext: &[u8], binding: &Binding<'_>) -> Vec<u8> {
        let version = self.active_version();
        let cipher = self
            .cipher(version, binding.user_id)
            .expect("Keyring guarantees the active version is in the ring");
        let nonce = format::random_nonce();
        // Exact capacity: the buffer never reallocates, so the plaintext briefly copied in
        // below is overwritten in place by its ciphertext and leaves no stray copy.
        let mut out = Vec::with_capacity(MIN_CIPHERTEXT_LEN + plaintext.len());
        format::write_header(&mut out, version, &nonce);
        out.extend_from_slice(plaintext);
        let tag = cipher
            .encrypt_inout_detached(
                (&nonce).into(),
                &binding.associated_data(),
                InOutBuf::from(&mut out[HEADER_LEN..]),
            )
            .expect("token plaintexts are far below AES-GCM's 64 GiB limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Authenticates and decrypts `ciphertext` with the key version named in its header.
    ///
    /// # Errors
    /// * [`VaultError::Malformed`]: not a version-1 ciphertext (empty, too short, unknown
    ///   format byte);
    /// * [`VaultError::UnknownKeyVersion`]: the header's key version is not in the keyring;
    /// * [`VaultError::Tampered`]: authentication failed (modified bytes, or a binding
    ///   other than the one it was sealed with).
    pub fn open(
        &self,
        ciphertext: &[u8],
        binding: &Binding<'_>,
    ) -> Result<SecretBytes, VaultError> {
        let started = std::time::Instant::now();
        let out = self.open_untimed(ciphertext, binding);
        crate::metrics::observe("open", out.is_ok(), started);
        out
    }

    fn open_untimed(
        &self,
        ciphertext: &[u8],
        binding: &Binding<'_>,
    ) -> Result<SecretBytes, VaultError> {
        let parsed = format::parse(ciphertext)?;
        let cipher = self.cipher(parsed.version, binding.user_id)?;
        // Decrypt in place inside a wiping buffer: the plaintext never exists in memory
        // that is not zeroized on drop. GCM checks the tag before it decrypts, so a
        // forged ciphertext yields no plaintext at all.
        let mut plaintext = Zeroizing::new(parsed.body.to_vec());
        cipher
            .decrypt_inout_detached(
                parsed.nonce.into(),
                &binding.associated_data(),
                InOutBuf::from(&mut plaintext[..]),
                parsed.tag.into(),
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(SecretBytes::new(plaintext))
    }

    /// Re-encrypts `ciphertext` under the active key version, for key rotation.
    ///
    /// Returns `Ok(None)` when it already is under the active version (such a ciphertext
    /// is not authenticated here: rotation only needs to know it is done), otherwise
    /// opens it with `binding` and returns the newly sealed bytes.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn reseal(
        &self,
        ciphertext: &[u8],
        binding: &Binding<'_>,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        if format::key_version_of(ciphertext)? == self.active_version() {
            return Ok(None);
        }
        let plaintext = self.open(ciphertext, binding)?;
        Ok(Some(self.seal(plaintext.expose_secret(), binding)))
    }

    /// How many per-user ciphers are cached right now, after applying pending
    /// evictions (for metrics and tests).
    #[must_use]
    pub fn cached_keys(&self) -> u64 {
        // moka applies evictions lazily; without this the count can overshoot briefly.
        self.inner.ciphers.run_pending_tasks();
        self.inner.ciphers.entry_count()
    }

    fn cipher(&self, version: u32, user_id: Uuid) -> Result<Arc<Aes256Gcm>, VaultError> {
        // Look the version up before touching the cache, so ciphertexts naming bogus
        // versions cannot fill it.
        let master = self
            .inner
            .keyring
            .master_key(version)
            .ok_or(VaultError::UnknownKeyVersion(version))?;
        Ok(self.inner.ciphers.get_with((version, user_id), || {
            let key = derive_user_key(master, &user_id);
            Arc::new(Aes256Gcm::new(key.expose_secret().into()))
        }))
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("keyring", &self.inner.keyring)
            .field("cache_capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::TokenKind;

    #[test]
    fn derived_key_cache_stays_bounded() {
        let vault = Vault::with_cache_capacity(Keyring::generate_dev(), 64);
        for n in 0..1_000u128 {
            let binding = Binding::new(Uuid::from_u128(n), "google", TokenKind::Refresh);
            let sealed = vault.seal(b"token", &binding);
            assert_eq!(
                vault.open(&sealed, &binding).unwrap().expose_secret(),
                b"token"
            );
        }
        let cached = vault.cached_keys();
        assert!(cached <= 64, "cache holds {cached} entries, capacity 64");
        assert!(cached > 0);
    }

    #[test]
    fn zero_capacity_still_works() {
        let vault = Vault::with_cache_capacity(Keyring::generate_dev(), 0);
        let binding = Binding::new(Uuid::from_u128(1), "google", TokenKind::Access);
        let sealed = vault.seal(b"t", &binding);
        assert_eq!(vault.open(&sealed, &binding).unwrap().expose_secret(), b"t");
        assert_eq!(vault.cached_keys(), 0);
    }

    #[test]
    fn clones_share_the_cache() {
        let vault = Vault::new(Keyring::generate_dev());
        let clone = vault.clone();
        let binding = Binding::new(Uuid::from_u128(9), "ms", TokenKind::Access);
        let _ = clone.seal(b"x", &binding);
        assert_eq!(vault.cached_keys(), 1);
    }

    #[test]
    fn cached_cipher_size() {
        // Recorded in ADR 0001: memory per cache entry is this plus moka's bookkeeping.
        let size = std::mem::size_of::<Aes256Gcm>();
        assert!(size < 4096, "size_of::<Aes256Gcm>() = {size}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let vault = Vault::new(Keyring::generate_dev());
        assert_eq!(
            format!("{vault:?}"),
            "Vault { keyring: Keyring { versions: [1], active: 1, .. }, cache_capacity: 10000, .. }"
        );
    }
}
