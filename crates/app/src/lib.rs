//! The use cases of user-service. Handlers call one function here and map its result; this
//! crate knows storage and the vault but nothing of HTTP.
#![forbid(unsafe_code)]

pub mod audit;
pub mod context;
mod error;
pub mod ops;
pub mod service_keys;

pub use context::{Ctx, RequestMeta};
pub use error::AppError;

use store::Db;

/// Everything a use case needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    db: Db,
    service_keys: service_keys::KeyCache,
}

impl App {
    /// Builds the use-case layer over an open database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self {
            db,
            service_keys: service_keys::KeyCache::new(),
        }
    }

    /// The database (for startup, shutdown and the CLI).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Verified service keys, shared by every clone of this `App`.
    pub(crate) fn service_key_cache(&self) -> &service_keys::KeyCache {
        &self.service_keys
    }
}
