//! The use cases of user-service. Handlers call one function here and map its result; this
//! crate knows storage and the vault but nothing of HTTP.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clerk;
pub mod context;
mod error;
pub mod ops;
pub mod users;

pub use context::{Ctx, RequestMeta};
pub use error::AppError;

use store::Db;

/// Everything a use case needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    db: Db,
}

impl App {
    /// Builds the use-case layer over an open database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database (for startup, shutdown and the CLI).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }
}
