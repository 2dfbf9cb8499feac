//! The one source of random tokens outside the vault (which keeps its own nonce and key
//! generation, since it must not depend on `app`): API keys, OAuth `state`, session ids,
//! jitter. A failing operating-system RNG is an error for the caller to answer, never a
//! panic on a request path.

use base64::Engine as _;

use crate::AppError;

/// `N` bytes from the operating system's RNG.
///
/// # Errors
/// [`AppError::Internal`] when the RNG fails.
pub fn bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| AppError::Internal(format!("operating system RNG failed: {e}")))?;
    Ok(out)
}

/// `N` random bytes, URL-safe base64 without padding.
///
/// # Errors
/// [`AppError::Internal`] when the RNG fails.
pub fn token<const N: usize>() -> Result<String, AppError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<N>()?))
}
