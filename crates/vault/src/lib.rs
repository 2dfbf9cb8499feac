//! The token vault: the only crate in user-service that touches key material.
//!
//! * [`Keyring`] holds the versioned 256-bit master keys parsed from
//!   `TOKEN_ENCRYPTION_KEYS` (`1:<base64>,2:<base64>`).
//! * [`derive_user_key`] turns a master key and a user id into that user's data key
//!   (HKDF-SHA256; see `docs/adr/0001-hkdf-not-pbkdf2.md`).
//! * [`Vault`] seals and opens tokens with AES-256-GCM, binding every ciphertext to the
//!   user, provider and token kind it belongs to ([`Binding`]), and re-seals old
//!   ciphertexts under the active key during rotation ([`Vault::reseal`]).
//!
//! Ciphertext format (version 1):
//! `0x01 | key_version (u32 BE) | nonce (12 random bytes) | AES-256-GCM ciphertext+tag`.
//!
//! Nothing secret is reachable through `Debug` or `Display` of any type in this crate.
//!
//! ```
//! use secrecy::ExposeSecret as _;
//! use uuid::Uuid;
//! use vault::{Binding, Keyring, TokenKind, Vault, VaultError};
//!
//! let vault = Vault::new(Keyring::generate_dev());
//! let user = Uuid::from_u128(1);
//! let binding = Binding::new(user, "google", TokenKind::Refresh);
//!
//! let sealed = vault.seal(b"1//0refresh", &binding);
//! assert_eq!(vault.open(&sealed, &binding)?.expose_secret(), b"1//0refresh");
//!
//! // The same bytes under another user's binding are reported as tampering.
//! let other = Binding::new(Uuid::from_u128(2), "google", TokenKind::Refresh);
//! assert_eq!(vault.open(&sealed, &other).unwrap_err(), VaultError::Tampered);
//! # Ok::<(), VaultError>(())
//! ```
#![forbid(unsafe_code)]

mod binding;
mod derive;
mod error;
mod format;
mod keyring;
pub mod metrics;
mod secret;
mod vault;

pub use binding::{Binding, TokenKind};
pub use derive::derive_user_key;
pub use error::VaultError;
pub use format::{FORMAT_V1, MIN_CIPHERTEXT_LEN, key_version_of};
pub use keyring::{KEY_LEN, Keyring, KeyringError};
pub use secret::{NotUtf8, SecretBytes};
pub use vault::{DEFAULT_CACHE_CAPACITY, Vault};
