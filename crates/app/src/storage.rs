//! The database as the server sees it: opening it, its migrations, its pools and closing
//! it. The server names no storage crate; this and the use cases are its only way to the
//! database (rows never leave `app`).

use store::Db;
pub use store::{DbOptions, migration::MigrationState};

use crate::AppError;

/// An open database, before (or without) the use cases: what startup and `migrate` work
/// with.
#[derive(Clone, Debug)]
pub struct Database(pub(crate) Db);

impl Database {
    /// Opens the primary at `url` and, when given, the read replica at `read_url`.
    ///
    /// # Errors
    /// When a URL is invalid or the database does not answer.
    pub async fn connect(
        url: &str,
        read_url: Option<&str>,
        opts: &DbOptions,
    ) -> Result<Self, AppError> {
        Ok(Self(Db::connect(url, read_url, opts).await?))
    }

    /// Applies every pending migration (a newer release's extra migrations are tolerated
    /// with a warning: expand/contract, ADR 0007).
    ///
    /// # Errors
    /// When a migration fails, or this release and the database's have diverged.
    pub async fn migrate(&self) -> Result<(), AppError> {
        Ok(self.0.migrate().await?)
    }

    /// Where the schema stands: migrations pending, and migrations of a newer release.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn migration_state(&self) -> Result<MigrationState, AppError> {
        Ok(self.0.migration_state().await?)
    }

    /// Logs the migrations of `state` this release does not know (a newer release's).
    pub fn warn_unknown(state: &MigrationState) {
        store::migration::state::warn_unknown(state);
    }

    /// Sets the pool gauges from the size of each pool now (at a scrape).
    pub fn sample_pool_gauges(&self) {
        crate::metrics::set_pool_gauges(&self.0);
    }

    /// Closes the pools, waiting for checked-out connections to return.
    pub async fn close(self) {
        self.0.close().await;
    }
}
