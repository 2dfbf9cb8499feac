//! The ciphertext layout: `0x01 | key_version (u32 BE) | nonce (12) | ciphertext+tag (16)`.

use crate::error::VaultError;

/// The format byte of the only layout so far. A new layout gets a new byte, so old
/// ciphertexts stay readable.
pub const FORMAT_V1: u8 = 0x01;

pub(crate) const VERSION_LEN: usize = 4;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const HEADER_LEN: usize = 1 + VERSION_LEN + NONCE_LEN;

/// The length of a sealed empty plaintext: header plus tag. Anything shorter is malformed.
pub const MIN_CIPHERTEXT_LEN: usize = HEADER_LEN + TAG_LEN;

/// A ciphertext split into its parts; borrowing, no copies.
pub(crate) struct Parsed<'a> {
    pub(crate) version: u32,
    pub(crate) nonce: &'a [u8; NONCE_LEN],
    pub(crate) body: &'a [u8],
    pub(crate) tag: &'a [u8; TAG_LEN],
}

/// Splits `ciphertext` into header fields, body and tag, checking only the layout.
pub(crate) fn parse(ciphertext: &[u8]) -> Result<Parsed<'_>, VaultError> {
    let (&format, rest) = ciphertext
        .split_first()
        .ok_or(VaultError::Malformed("empty"))?;
    // The format byte is checked before the length so that foreign data (say, a
    // legacy plaintext token) is reported as an unknown format rather than "too short".
    if format != FORMAT_V1 {
        return Err(VaultError::Malformed("unknown format byte"));
    }
    if ciphertext.len() < MIN_CIPHERTEXT_LEN {
        return Err(VaultError::Malformed("too short"));
    }
    let (version, rest) = rest.split_at(VERSION_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let version: &[u8; VERSION_LEN] = version.try_into().map_err(|_| too_short())?;
    Ok(Parsed {
        version: u32::from_be_bytes(*version),
        nonce: nonce.try_into().map_err(|_| too_short())?,
        body,
        tag: tag.try_into().map_err(|_| too_short())?,
    })
}

// Unreachable after the length check; kept as an error rather than a panic.
fn too_short() -> VaultError {
    VaultError::Malformed("too short")
}

/// A fresh random nonce.
///
/// 96-bit random nonces are safe for up to 2^32 seals under one key (NIST SP 800-38D);
/// keys are per user and key version, so no single key comes near that.
///
/// # Panics
/// If the operating system's random number generator fails.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    // Without randomness a nonce could repeat, which breaks GCM: refuse rather than risk it.
    getrandom::fill(&mut nonce).expect("operating system RNG failed");
    nonce
}

/// Appends the header (`format | version | nonce`) to `out`.
pub(crate) fn write_header(out: &mut Vec<u8>, version: u32, nonce: &[u8; NONCE_LEN]) {
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(nonce);
}

/// The key version a ciphertext was sealed under, read from its header without
/// decrypting (for rotation progress and `keys status`).
///
/// # Errors
/// [`VaultError::Malformed`] if the bytes are not a version-1 ciphertext.
pub fn key_version_of(ciphertext: &[u8]) -> Result<u32, VaultError> {
    parse(ciphertext).map(|p| p.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body_len: usize) -> Vec<u8> {
        let mut ct = Vec::new();
        write_header(&mut ct, 0x0102_0304, &random_nonce());
        ct.resize(HEADER_LEN + body_len + TAG_LEN, 0xee);
        ct
    }

    #[test]
    fn header_layout() {
        let ct = sample(3);
        assert_eq!(ct[..5], [0x01, 0x01, 0x02, 0x03, 0x04]);
        let parsed = parse(&ct).unwrap();
        assert_eq!(parsed.version, 0x0102_0304);
        assert_eq!(parsed.nonce, &ct[5..17]);
        assert_eq!(parsed.body.len(), 3);
        assert_eq!(key_version_of(&ct), Ok(0x0102_0304));
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(sample(0)[5..17], sample(0)[5..17]);
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(key_version_of(&[]), Err(VaultError::Malformed("empty")));
        let mut ct = sample(0);
        assert_eq!(
            key_version_of(&ct[..MIN_CIPHERTEXT_LEN - 1]),
            Err(too_short())
        );
        assert!(key_version_of(&ct).is_ok());
        ct[0] = 0x02;
        assert_eq!(
            key_version_of(&ct),
            Err(VaultError::Malformed("unknown format byte"))
        );
    }
}
