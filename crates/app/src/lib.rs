//! The use cases of user-service. Handlers call one function here and map its result; this
//! crate knows storage and the vault but nothing of HTTP.
#![forbid(unsafe_code)]

pub mod audit;
mod audit_verify;
pub mod context;
mod error;
pub mod keys;
pub mod ops;

pub use context::{Ctx, RequestMeta};
pub use error::AppError;

use store::Db;
use vault::Vault;

pub use audit_verify::{ChainBreak, ChainReport};

/// Everything a use case needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    db: Db,
    vault: Vault,
}

impl App {
    /// Builds the use-case layer over an open database and the token vault.
    #[must_use]
    pub fn new(db: Db, vault: Vault) -> Self {
        Self { db, vault }
    }

    /// The token vault.
    #[must_use]
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The database (for startup, shutdown and the CLI).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }
}
