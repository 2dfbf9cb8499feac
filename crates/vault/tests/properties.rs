//! Property tests: round trips, tamper detection per ciphertext region, binding checks.

mod common;

use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use secrecy::ExposeSecret as _;
use uuid::Uuid;
use vault::{Binding, MIN_CIPHERTEXT_LEN, TokenKind, Vault, VaultError};

/// Ring {1, 2, 3} with 2 active, so a flipped version byte can land on another version
/// that is in the ring (authentication fails) or on one that is not (unknown version).
static VAULT: LazyLock<Vault> = LazyLock::new(|| Vault::new(common::ring(&[1, 2, 3], Some(2))));

#[derive(Debug, Clone)]
struct OwnedBinding {
    user_id: Uuid,
    provider: String,
    kind: TokenKind,
}

impl OwnedBinding {
    fn get(&self) -> Binding<'_> {
        Binding::new(self.user_id, &self.provider, self.kind)
    }
}

fn kind() -> impl Strategy<Value = TokenKind> {
    select(TokenKind::ALL.to_vec())
}

fn binding() -> impl Strategy<Value = OwnedBinding> {
    (any::<u128>(), "\\PC{0,24}", kind()).prop_map(|(user, provider, kind)| OwnedBinding {
        user_id: Uuid::from_u128(user),
        provider,
        kind,
    })
}

fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..2048)
}

/// What opening must report after XOR-ing `mask` into byte `index` of a valid ciphertext.
fn expected_after_flip(flipped: &[u8], index: usize) -> VaultError {
    match index {
        0 => VaultError::Malformed("unknown format byte"),
        1..=4 => {
            let version = u32::from_be_bytes(flipped[1..5].try_into().expect("four header bytes"));
            if VAULT.keyring().contains(version) {
                // Another key in the ring: derives a different user key, so the tag fails.
                VaultError::Tampered
            } else {
                VaultError::UnknownKeyVersion(version)
            }
        }
        // Nonce, body or tag.
        _ => VaultError::Tampered,
    }
}

proptest! {
    #[test]
    fn seal_open_round_trip(plaintext in plaintext(), b in binding()) {
        let sealed = VAULT.seal(&plaintext, &b.get());
        prop_assert_eq!(sealed.len(), MIN_CIPHERTEXT_LEN + plaintext.len());
        prop_assert_eq!(sealed[0], 0x01);
        prop_assert_eq!(vault::key_version_of(&sealed), Ok(2));
        let opened = VAULT.open(&sealed, &b.get()).unwrap();
        prop_assert_eq!(opened.expose_secret(), &plaintext[..]);
    }

    #[test]
    fn flipping_any_byte_fails(
        plaintext in plaintext(),
        b in binding(),
        index in any::<Index>(),
        mask in 1u8..=255,
    ) {
        let mut sealed = VAULT.seal(&plaintext, &b.get());
        let index = index.index(sealed.len());
        sealed[index] ^= mask;
        let expected = expected_after_flip(&sealed, index);
        prop_assert_eq!(VAULT.open(&sealed, &b.get()).unwrap_err(), expected);
    }

    #[test]
    fn truncation_fails(plaintext in plaintext(), b in binding(), keep in any::<Index>()) {
        let sealed = VAULT.seal(&plaintext, &b.get());
        let keep = keep.index(sealed.len());
        let expected = match keep {
            0 => VaultError::Malformed("empty"),
            n if n < MIN_CIPHERTEXT_LEN => VaultError::Malformed("too short"),
            _ => VaultError::Tampered,
        };
        prop_assert_eq!(VAULT.open(&sealed[..keep], &b.get()).unwrap_err(), expected);
    }

    #[test]
    fn another_user_cannot_open(plaintext in plaintext(), b in binding(), other in any::<u128>()) {
        let other = Uuid::from_u128(other);
        prop_assume!(other != b.user_id);
        let sealed = VAULT.seal(&plaintext, &b.get());
        let wrong = Binding { user_id: other, ..b.get() };
        prop_assert_eq!(VAULT.open(&sealed, &wrong).unwrap_err(), VaultError::Tampered);
    }

    #[test]
    fn another_provider_cannot_open(plaintext in plaintext(), b in binding(), other in "\\PC{0,24}") {
        prop_assume!(other != b.provider);
        let sealed = VAULT.seal(&plaintext, &b.get());
        let wrong = Binding { provider: &other, ..b.get() };
        prop_assert_eq!(VAULT.open(&sealed, &wrong).unwrap_err(), VaultError::Tampered);
    }

    #[test]
    fn another_kind_cannot_open(plaintext in plaintext(), b in binding(), other in kind()) {
        prop_assume!(other != b.kind);
        let sealed = VAULT.seal(&plaintext, &b.get());
        let wrong = Binding { kind: other, ..b.get() };
        prop_assert_eq!(VAULT.open(&sealed, &wrong).unwrap_err(), VaultError::Tampered);
    }

    #[test]
    fn version_not_in_ring_is_unknown(plaintext in plaintext(), b in binding(), version in any::<u32>()) {
        prop_assume!(!VAULT.keyring().contains(version));
        let mut sealed = VAULT.seal(&plaintext, &b.get());
        sealed[1..5].copy_from_slice(&version.to_be_bytes());
        prop_assert_eq!(
            VAULT.open(&sealed, &b.get()).unwrap_err(),
            VaultError::UnknownKeyVersion(version)
        );
    }
}

/// Every non-zero mask on every header byte, so the rarely drawn cases (a version flip
/// landing on another version in the ring) are certainly covered.
#[test]
fn every_header_flip_is_classified() {
    let b = Binding::new(Uuid::from_u128(42), "google", TokenKind::Refresh);
    let sealed = VAULT.seal(b"1//0refresh-token", &b);
    let mut in_ring = 0;
    for index in 0..17 {
        for mask in 1..=255u8 {
            let mut flipped = sealed.clone();
            flipped[index] ^= mask;
            let expected = expected_after_flip(&flipped, index);
            if (1..=4).contains(&index) && expected == VaultError::Tampered {
                in_ring += 1;
            }
            assert_eq!(
                VAULT.open(&flipped, &b).unwrap_err(),
                expected,
                "byte {index} ^ {mask:#04x}"
            );
        }
    }
    // Version 2 ^ 3 = 1 and 2 ^ 1 = 3, both in the ring.
    assert_eq!(in_ring, 2);
}

#[test]
fn sealing_twice_uses_fresh_nonces() {
    let b = Binding::new(Uuid::from_u128(1), "google", TokenKind::Access);
    let one = VAULT.seal(b"same", &b);
    let two = VAULT.seal(b"same", &b);
    assert_ne!(one[5..17], two[5..17]);
    assert_ne!(one, two);
}

#[test]
fn error_messages_are_precise_and_secret_free() {
    assert_eq!(
        VaultError::Tampered.to_string(),
        "ciphertext failed authentication: it was tampered with, or does not belong to this user, provider and token kind"
    );
    assert!(!VaultError::Tampered.to_string().contains("expired"));
    assert_eq!(
        VaultError::UnknownKeyVersion(7).to_string(),
        "ciphertext is sealed under key version 7, which is not in the keyring"
    );
    assert_eq!(
        VaultError::Malformed("too short").to_string(),
        "malformed ciphertext: too short"
    );
}
