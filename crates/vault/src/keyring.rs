//! The versioned master keyring parsed from `TOKEN_ENCRYPTION_KEYS`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::decoded_len_estimate;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

/// Length in bytes of every master key (AES-256 / HKDF-SHA256 input).
pub const KEY_LEN: usize = 32;

/// Why a keyring could not be built.
///
/// Messages name positions and versions only: key material (or any fragment of it,
/// such as the offending byte a base64 decoder would report) never appears.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The keyring string is empty or only whitespace.
    #[error(
        "TOKEN_ENCRYPTION_KEYS is empty: expected `<version>:<base64 of 32 bytes>` entries separated by commas, e.g. `1:<base64>,2:<base64>`"
    )]
    Empty,
    /// An entry (1-based `position` in the comma-separated list) could not be parsed.
    #[error(
        "TOKEN_ENCRYPTION_KEYS entry {position} is malformed: {reason} (expected `<version>:<base64 of 32 bytes>`)"
    )]
    MalformedEntry {
        /// 1-based position of the entry in the comma-separated list.
        position: usize,
        /// What is wrong with it, without its content.
        reason: &'static str,
    },
    /// An entry (1-based `position`) uses version 0, which is reserved.
    #[error("TOKEN_ENCRYPTION_KEYS entry {position} uses key version 0; versions start at 1")]
    VersionZero {
        /// 1-based position of the entry in the comma-separated list.
        position: usize,
    },
    /// A key decoded to something other than 32 bytes.
    #[error(
        "TOKEN_ENCRYPTION_KEYS key version {version} decodes to {len} bytes; every key must be exactly 32 bytes (256 bits)"
    )]
    WrongKeyLength {
        /// The version whose key has the wrong length.
        version: u32,
        /// The decoded length in bytes.
        len: usize,
    },
    /// The same version appears twice.
    #[error("TOKEN_ENCRYPTION_KEYS lists key version {0} more than once")]
    DuplicateVersion(u32),
    /// The requested active version is not one of the parsed versions.
    #[error(
        "TOKEN_ENCRYPTION_ACTIVE_VERSION is {active}, but the keyring only has versions {present:?}"
    )]
    ActiveVersionNotInRing {
        /// The requested active version.
        active: u32,
        /// The versions the keyring does hold, ascending.
        present: Vec<u32>,
    },
}

/// A set of versioned 256-bit master keys plus the version used for new encryptions.
///
/// Every listed key decrypts; only the active one encrypts. Keys are boxed in
/// [`SecretBox`] so they are wiped on drop and never move around on the stack, and
/// `Debug` prints only the versions.
pub struct Keyring {
    // BTreeMap: versions come out ascending, which both `Debug` and `to_env_value` want.
    keys: BTreeMap<u32, SecretBox<[u8; KEY_LEN]>>,
    active: u32,
}

impl Keyring {
    /// Parses the `TOKEN_ENCRYPTION_KEYS` format: `1:<base64>,2:<base64>` (standard
    /// base64 with padding, 32 bytes after decoding; whitespace around entries is ignored).
    ///
    /// `active` selects the encrypting version; `None` means the highest version.
    ///
    /// # Errors
    /// A [`KeyringError`] naming the first problem found, without any key material.
    pub fn parse(keys: &str, active: Option<u32>) -> Result<Self, KeyringError> {
        if keys.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut map = BTreeMap::new();
        for (index, entry) in keys.split(',').enumerate() {
            let position = index + 1;
            let (version, key) = parse_entry(entry.trim(), position)?;
            if map.insert(version, key).is_some() {
                return Err(KeyringError::DuplicateVersion(version));
            }
        }
        Self::from_map(map, active)
    }

    /// Creates a fresh single-version ring (version 1) from the operating system's RNG,
    /// for local development only.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    #[must_use]
    pub fn generate_dev() -> Self {
        let key = SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            // No usable RNG means no safe keys at all; there is nothing sensible to fall back to.
            getrandom::fill(k).expect("operating system RNG failed");
        });
        Self {
            keys: BTreeMap::from([(1, key)]),
            active: 1,
        }
    }

    /// Encodes the ring back to the `TOKEN_ENCRYPTION_KEYS` format (ascending versions),
    /// e.g. to write a development key file. The active version is not part of that
    /// format; it travels separately as `TOKEN_ENCRYPTION_ACTIVE_VERSION`.
    #[must_use]
    pub fn to_env_value(&self) -> SecretString {
        // Each entry is at most "4294967295:" + 44 base64 chars + ","; reserving up front
        // keeps the String from reallocating and leaving unwiped copies behind.
        let mut out = Zeroizing::new(String::with_capacity(self.keys.len() * 57));
        for (i, (version, key)) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&version.to_string());
            out.push(':');
            STANDARD.encode_string(key.expose_secret(), &mut out);
        }
        SecretString::from(out.as_str())
    }

    /// All versions in the ring, ascending.
    #[must_use]
    pub fn versions(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// The version new ciphertexts are sealed under.
    #[must_use]
    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// Whether `version` is in the ring (and so can be opened).
    #[must_use]
    pub fn contains(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }

    /// The master key for `version`; crate-private so key bytes never leave the vault.
    pub(crate) fn master_key(&self, version: u32) -> Option<&[u8; KEY_LEN]> {
        self.keys.get(&version).map(ExposeSecret::expose_secret)
    }

    fn from_map(
        keys: BTreeMap<u32, SecretBox<[u8; KEY_LEN]>>,
        active: Option<u32>,
    ) -> Result<Self, KeyringError> {
        // `parse` rejects empty input before we get here, so the ring has a last entry.
        let highest = *keys.keys().next_back().ok_or(KeyringError::Empty)?;
        let active = active.unwrap_or(highest);
        if !keys.contains_key(&active) {
            return Err(KeyringError::ActiveVersionNotInRing {
                active,
                present: keys.keys().copied().collect(),
            });
        }
        Ok(Self { keys, active })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn parse_entry(
    entry: &str,
    position: usize,
) -> Result<(u32, SecretBox<[u8; KEY_LEN]>), KeyringError> {
    let malformed = |reason| KeyringError::MalformedEntry { position, reason };
    if entry.is_empty() {
        return Err(malformed("entry is empty (stray comma?)"));
    }
    let (version, key_b64) = entry
        .split_once(':')
        .ok_or(malformed("missing ':' between version and key"))?;
    let version = version.trim();
    // `u32::from_str` would also accept "+1"; a version is plain digits only.
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("version is not a decimal number"));
    }
    let version: u32 = version
        .parse()
        .map_err(|_| malformed("version does not fit in 32 bits"))?;
    if version == 0 {
        return Err(KeyringError::VersionZero { position });
    }
    let key_b64 = key_b64.trim();
    // Reserve the decoder's estimate first so the buffer never reallocates: a reallocation
    // would free an unwiped copy of the key.
    let mut decoded = Zeroizing::new(Vec::with_capacity(decoded_len_estimate(key_b64.len())));
    // The decoder's error names the offending byte and offset, i.e. a piece of the key,
    // so it is dropped here and replaced by a fixed reason.
    STANDARD
        .decode_vec(key_b64, &mut decoded)
        .map_err(|_| malformed("key is not valid standard base64 (with '=' padding)"))?;
    if decoded.len() != KEY_LEN {
        return Err(KeyringError::WrongKeyLength {
            version,
            len: decoded.len(),
        });
    }
    let key = SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| k.copy_from_slice(&decoded));
    Ok((version, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(byte: u8, len: usize) -> String {
        STANDARD.encode(vec![byte; len])
    }

    fn err(keys: &str, active: Option<u32>) -> KeyringError {
        Keyring::parse(keys, active).expect_err("parse should fail")
    }

    #[test]
    fn parses_two_versions_and_defaults_to_highest() {
        let ring = Keyring::parse(&format!("2:{}, 1:{}", b64(2, 32), b64(1, 32)), None).unwrap();
        assert_eq!(ring.versions().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ring.active_version(), 2);
        assert!(ring.contains(1) && ring.contains(2) && !ring.contains(3));
        assert_eq!(ring.master_key(1), Some(&[1; 32]));
    }

    #[test]
    fn explicit_active_version_is_honoured() {
        let ring = Keyring::parse(&format!("1:{},2:{}", b64(1, 32), b64(2, 32)), Some(1)).unwrap();
        assert_eq!(ring.active_version(), 1);
    }

    #[test]
    fn empty_and_blank_input_is_rejected() {
        assert_eq!(err("", None), KeyringError::Empty);
        assert_eq!(err("  \n", None), KeyringError::Empty);
    }

    #[test]
    fn malformed_entries_name_their_position() {
        let good = format!("1:{}", b64(1, 32));
        for (input, position) in [
            (format!("{good},"), 2),
            (format!("{good},,2:{}", b64(2, 32)), 2),
            (b64(1, 32), 1),
            (format!("x:{}", b64(1, 32)), 1),
            (format!("+1:{}", b64(1, 32)), 1),
            (format!(":{}", b64(1, 32)), 1),
            (format!("4294967296:{}", b64(1, 32)), 1),
            (format!("{good},2:not*base64!"), 2),
            // URL-safe alphabet is not the standard one.
            (format!("{good},2:{}", b64(0xfb, 32).replace('+', "-")), 2),
        ] {
            match err(&input, None) {
                KeyringError::MalformedEntry { position: p, .. } => {
                    assert_eq!(p, position, "input {input:?}");
                }
                other => panic!("input {input:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn version_zero_is_rejected() {
        assert_eq!(
            err(&format!("0:{}", b64(1, 32)), None),
            KeyringError::VersionZero { position: 1 }
        );
    }

    #[test]
    fn wrong_key_length_is_rejected() {
        for len in [0, 16, 31, 33, 64] {
            assert_eq!(
                err(&format!("3:{}", b64(7, len)), None),
                KeyringError::WrongKeyLength { version: 3, len }
            );
        }
    }

    #[test]
    fn duplicate_version_is_rejected() {
        let keys = format!("1:{},1:{}", b64(1, 32), b64(2, 32));
        assert_eq!(err(&keys, None), KeyringError::DuplicateVersion(1));
    }

    #[test]
    fn active_version_must_be_in_ring() {
        let keys = format!("1:{},2:{}", b64(1, 32), b64(2, 32));
        assert_eq!(
            err(&keys, Some(3)),
            KeyringError::ActiveVersionNotInRing {
                active: 3,
                present: vec![1, 2]
            }
        );
    }

    #[test]
    fn errors_never_echo_key_material() {
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0!!";
        for e in [
            err(&format!("1:{secret}"), None),
            err(&format!("1:{}", b64(9, 31)), None),
        ] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("c2Vj"), "{shown}");
            assert!(!shown.contains("CQkJ"), "{shown}");
        }
    }

    #[test]
    fn debug_shows_versions_only() {
        let ring = Keyring::generate_dev();
        let encoded = ring.to_env_value();
        let key_b64 = encoded
            .expose_secret()
            .split_once(':')
            .unwrap()
            .1
            .to_owned();
        let shown = format!("{ring:?}");
        assert_eq!(shown, "Keyring { versions: [1], active: 1, .. }");
        // No 6-character window of the base64 key shows up either.
        for window in key_b64.as_bytes().windows(6) {
            assert!(!shown.contains(std::str::from_utf8(window).unwrap()));
        }
    }

    #[test]
    fn dev_ring_round_trips_through_env_format() {
        let ring = Keyring::generate_dev();
        let again = Keyring::parse(ring.to_env_value().expose_secret(), None).unwrap();
        assert_eq!(again.versions().collect::<Vec<_>>(), [1]);
        assert_eq!(again.master_key(1), ring.master_key(1));
        assert_ne!(ring.master_key(1), Some(&[0; 32]));
        assert_ne!(Keyring::generate_dev().master_key(1), ring.master_key(1));
    }

    #[test]
    fn env_value_lists_versions_ascending() {
        let ring = Keyring::parse(&format!("5:{},2:{}", b64(5, 32), b64(2, 32)), None).unwrap();
        let value = ring.to_env_value();
        assert_eq!(
            value.expose_secret(),
            format!("2:{},5:{}", b64(2, 32), b64(5, 32))
        );
    }
}
