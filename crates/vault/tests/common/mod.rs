//! Fixtures shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vault::Keyring;

/// `TOKEN_ENCRYPTION_KEYS` entry for `version` with a recognisable, fixed key.
pub fn entry(version: u32) -> String {
    let key = [u8::try_from(version).expect("small test version"); 32];
    format!("{version}:{}", STANDARD.encode(key))
}

/// A ring of the given versions with an optional active version.
pub fn ring(versions: &[u32], active: Option<u32>) -> Keyring {
    let keys: Vec<_> = versions.iter().map(|&v| entry(v)).collect();
    Keyring::parse(&keys.join(","), active).expect("valid test keyring")
}
