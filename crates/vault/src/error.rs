//! Why a ciphertext could not be opened.

/// Errors from opening or inspecting a ciphertext. None carries secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The ciphertext names a key version the keyring does not hold (removed too early,
    /// or a keyring from another environment).
    #[error("ciphertext is sealed under key version {0}, which is not in the keyring")]
    UnknownKeyVersion(u32),
    /// Authentication failed: the ciphertext was modified, or it is being opened with a
    /// binding (user, provider, token kind) or key other than the one it was sealed with.
    #[error(
        "ciphertext failed authentication: it was tampered with, or does not belong to this user, provider and token kind"
    )]
    Tampered,
    /// The bytes are not a ciphertext in a format this vault knows.
    #[error("malformed ciphertext: {0}")]
    Malformed(&'static str),
}
