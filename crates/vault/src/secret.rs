//! Opened plaintext: wiped on drop, redacted in `Debug`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Plaintext returned by [`Vault::open`](crate::Vault::open).
///
/// The bytes are wiped when this is dropped and are reachable only through
/// [`ExposeSecret::expose_secret`], which makes every use greppable.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

/// The opened plaintext is not UTF-8 (so it cannot be a textual token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("opened plaintext is not valid UTF-8")]
pub struct NotUtf8;

impl SecretBytes {
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// Length of the plaintext in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the plaintext is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Copies the plaintext into a [`SecretString`] (tokens are text on the wire).
    ///
    /// # Errors
    /// [`NotUtf8`] if the bytes are not UTF-8; the error carries none of them.
    pub fn to_secret_string(&self) -> Result<SecretString, NotUtf8> {
        let text = std::str::from_utf8(&self.0).map_err(|_| NotUtf8)?;
        // `SecretString::from(&str)` copies into an exactly-sized allocation, so no
        // unwiped intermediate buffer is left behind.
        Ok(SecretString::from(text))
    }
}

impl ExposeSecret<[u8]> for SecretBytes {
    fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_text_converts() {
        let secret = SecretBytes::new(Zeroizing::new(b"ya29.token".to_vec()));
        assert_eq!(format!("{secret:?}"), "SecretBytes([REDACTED])");
        assert_eq!(secret.len(), 10);
        assert_eq!(
            secret.to_secret_string().unwrap().expose_secret(),
            "ya29.token"
        );
        let binary = SecretBytes::new(Zeroizing::new(vec![0xff, 0xfe]));
        assert_eq!(binary.to_secret_string().unwrap_err(), NotUtf8);
    }
}
