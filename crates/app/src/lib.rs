//! The use cases of user-service. Handlers call one function here and map its result; this
//! crate knows storage and the vault but nothing of HTTP.
#![forbid(unsafe_code)]

pub mod audit;
pub mod context;
mod error;
pub mod ops;
pub mod preferences;

pub use context::{Ctx, RequestMeta};
pub use error::AppError;

use std::sync::Arc;

use domain::preferences::Preferences;
use store::Db;

/// Everything a use case needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    db: Db,
    /// System defaults of preferences (built in, or overridden by configuration).
    preference_defaults: Arc<Preferences>,
}

impl App {
    /// Builds the use-case layer over an open database.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self {
            db,
            preference_defaults: Arc::new(Preferences::builtin()),
        }
    }

    /// Uses `defaults` as the system defaults of preferences (see
    /// `domain::preferences::defaults_with` for building them from configuration).
    #[must_use]
    pub fn with_preference_defaults(mut self, defaults: Preferences) -> Self {
        self.preference_defaults = Arc::new(defaults);
        self
    }

    /// The system defaults of preferences in force.
    #[must_use]
    pub fn preference_defaults(&self) -> &Preferences {
        &self.preference_defaults
    }

    /// The database (for startup, shutdown and the CLI).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }
}
