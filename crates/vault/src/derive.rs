//! Per-user data keys: HKDF-SHA256 over a master key (RFC 5869).

use hkdf::Hkdf;
use secrecy::SecretBox;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroize as _;

use crate::keyring::KEY_LEN;

/// HKDF salt: fixed per service, so the same master key used by another system (a
/// mistake, but a possible one) still yields unrelated keys.
const SALT: &[u8] = b"user-service/token-vault/salt/v1";

/// HKDF info prefix; the 16 raw bytes of the user id follow it. The `v1` lets a future
/// derivation scheme coexist with this one.
const INFO_PREFIX: &[u8] = b"user-service/token-key/v1";

/// Derives the 256-bit data key of `user_id` from one master key.
///
/// `HKDF-SHA256(salt = "user-service/token-vault/salt/v1",
/// ikm = master, info = "user-service/token-key/v1" || user_id (16 raw bytes))`.
///
/// The master key is already uniformly random, so a single HKDF extract+expand is the
/// whole cost (about a microsecond); no password stretching is wanted (ADR 0001).
/// The result is boxed so it is written once, on the heap, and wiped on drop.
#[must_use]
#[allow(
    clippy::missing_panics_doc,
    reason = "HKDF-SHA256 can always produce 32 bytes; the expect cannot fire"
)]
pub fn derive_user_key(master: &[u8; KEY_LEN], user_id: &Uuid) -> SecretBox<[u8; KEY_LEN]> {
    let (mut prk, hkdf) = Hkdf::<Sha256>::extract(Some(SALT), master);
    // The PRK is as sensitive as the master key; `Hkdf` keeps its own keyed copy.
    prk.as_mut_slice().zeroize();
    SecretBox::init_with_mut(|okm: &mut [u8; KEY_LEN]| {
        hkdf.expand_multi_info(&[INFO_PREFIX, user_id.as_bytes()], okm)
            // 32 bytes is far below HKDF-SHA256's 255 * 32 byte output limit.
            .expect("32-byte HKDF-SHA256 output is always valid");
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    const MASTER: [u8; 32] = [0x42; 32];

    #[test]
    fn matches_a_one_shot_hkdf_with_concatenated_info() {
        let user = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut info = INFO_PREFIX.to_vec();
        info.extend_from_slice(user.as_bytes());
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"user-service/token-vault/salt/v1"), &MASTER)
            .expand(&info, &mut expected)
            .unwrap();
        assert_eq!(derive_user_key(&MASTER, &user).expose_secret(), &expected);
    }

    #[test]
    fn is_deterministic_and_separates_users_and_masters() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let key = |m: &[u8; 32], u| *derive_user_key(m, u).expose_secret();
        assert_eq!(key(&MASTER, &a), key(&MASTER, &a));
        assert_ne!(key(&MASTER, &a), key(&MASTER, &b));
        assert_ne!(key(&MASTER, &a), key(&[0x43; 32], &a));
        assert_ne!(key(&MASTER, &a), MASTER);
    }
}
