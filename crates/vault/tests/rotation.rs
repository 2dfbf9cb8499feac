//! Key rotation: add a version, re-seal, retire the old one.

mod common;

use secrecy::ExposeSecret as _;
use uuid::Uuid;
use vault::{Binding, TokenKind, Vault, VaultError, key_version_of};

const TOKEN: &[u8] = b"1//0gRefreshTokenForRotation";

fn binding() -> Binding<'static> {
    Binding::new(Uuid::from_u128(0xabc), "google", TokenKind::Refresh)
}

#[test]
fn rotate_from_one_to_two() {
    let b = binding();
    let v1 = Vault::new(common::ring(&[1], None));
    let old = v1.seal(TOKEN, &b);
    assert_eq!(key_version_of(&old), Ok(1));
    assert_eq!(
        v1.reseal(&old, &b),
        Ok(None),
        "already under the active version"
    );

    // Add version 2: new writes use it, old ciphertexts still open.
    let v12 = Vault::new(common::ring(&[1, 2], None));
    assert_eq!(v12.active_version(), 2);
    assert_eq!(v12.open(&old, &b).unwrap().expose_secret(), TOKEN);
    let resealed = v12
        .reseal(&old, &b)
        .unwrap()
        .expect("v1 ciphertext is re-sealed");
    assert_eq!(key_version_of(&resealed), Ok(2));
    assert_eq!(v12.open(&resealed, &b).unwrap().expose_secret(), TOKEN);
    // Idempotent: a second pass finds nothing to do.
    assert_eq!(v12.reseal(&resealed, &b), Ok(None));

    // Retire version 1.
    let v2 = Vault::new(common::ring(&[2], None));
    assert_eq!(v2.open(&resealed, &b).unwrap().expose_secret(), TOKEN);
    assert_eq!(
        v2.open(&old, &b).unwrap_err(),
        VaultError::UnknownKeyVersion(1)
    );
    assert_eq!(v2.reseal(&old, &b), Err(VaultError::UnknownKeyVersion(1)));
}

#[test]
fn reseal_checks_the_binding() {
    let v1 = Vault::new(common::ring(&[1], None));
    let old = v1.seal(TOKEN, &binding());
    let v12 = Vault::new(common::ring(&[1, 2], None));
    let wrong = Binding::new(Uuid::from_u128(0xabc), "microsoft", TokenKind::Refresh);
    assert_eq!(v12.reseal(&old, &wrong), Err(VaultError::Tampered));
}

#[test]
fn pinned_active_version_seals_with_it() {
    // TOKEN_ENCRYPTION_ACTIVE_VERSION=1 while 2 is being distributed.
    let pinned = Vault::new(common::ring(&[1, 2], Some(1)));
    let sealed = pinned.seal(TOKEN, &binding());
    assert_eq!(key_version_of(&sealed), Ok(1));
    let v2 = Vault::new(common::ring(&[1, 2], None));
    let moved = v2.reseal(&sealed, &binding()).unwrap().unwrap();
    assert_eq!(key_version_of(&moved), Ok(2));
}

#[test]
fn same_version_number_different_key_is_tampering() {
    // A keyring from another environment reusing version 1 with a different key.
    let ours = Vault::new(common::ring(&[1], None));
    let theirs = Vault::new(vault::Keyring::generate_dev());
    let sealed = theirs.seal(TOKEN, &binding());
    assert_eq!(
        ours.open(&sealed, &binding()).unwrap_err(),
        VaultError::Tampered
    );
}
