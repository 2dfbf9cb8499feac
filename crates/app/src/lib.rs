//! The use cases of user-service. Handlers call one function here and map its result; this
//! crate knows storage and the vault but nothing of HTTP.
#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
mod backoff;
pub mod context;
pub mod encryption_keys;
mod error;
pub mod events;
pub mod integrations;
pub mod jobs;
pub mod metrics;
pub mod operations;
pub mod outbound;
pub mod page;
pub mod preferences;
pub mod proxy;
pub mod random;
pub mod service_keys;
pub mod storage;
pub mod tokens;
pub mod users;

pub use context::{Ctx, RequestMeta};
pub use error::AppError;

use std::sync::Arc;

use domain::preferences::Preferences;
use store::Db;
use vault::Vault;

pub use audit::{ChainBreak, ChainReport};

/// Everything a use case needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    db: storage::Database,
    vault: Vault,
    access_log: audit::access_log::AccessLog,
    /// System defaults of preferences (built in, or overridden by configuration).
    preference_defaults: Arc<Preferences>,
    service_keys: service_keys::cache::KeyCache,
    /// The OAuth providers this deployment knows.
    catalog: Arc<integrations::oauth::Catalog>,
    /// Redirect URIs of the connect flow.
    oauth_settings: Arc<integrations::OAuthSettings>,
    /// The HTTP client for providers.
    oauth_client: integrations::oauth::client::OAuthClient,
    /// One in-process lock per integration being refreshed (single flight).
    refresh_locks: tokens::RefreshLocks,
    /// Subscribers of events and the retry policy.
    events: Arc<events::EventSettings>,
    /// Clerk's Backend API for the sign-up race, when configured.
    clerk_api: Option<Arc<users::signup::ClerkApi>>,
    /// The provider proxy's limits.
    proxy: proxy::ProxySettings,
}

impl App {
    /// Builds the use-case layer over an open database and the token vault. Starts the
    /// audit access-log writer, so it must run inside a Tokio runtime.
    ///
    /// # Panics
    /// When the TLS backend cannot be set up at all (reqwest's own `Client::new` panics
    /// the same way); this happens at startup, never on a request.
    #[must_use]
    pub fn new(db: Db, vault: Vault) -> Self {
        let access_log = audit::access_log::AccessLog::spawn(db.clone(), Default::default());
        Self {
            db: storage::Database(db),
            vault,
            access_log,
            preference_defaults: Arc::new(Preferences::builtin()),
            service_keys: service_keys::cache::KeyCache::new(),
            catalog: Arc::new(integrations::oauth::Catalog::builtin()),
            oauth_settings: Arc::new(integrations::OAuthSettings::default()),
            oauth_client: integrations::oauth::client::OAuthClient::new(outbound()),
            refresh_locks: tokens::refresh_locks(),
            events: Arc::new(events::EventSettings::default()),
            clerk_api: None,
            proxy: proxy::ProxySettings::default(),
        }
    }

    /// Replaces the access-log writer with one running `settings` (the one started by
    /// [`App::new`] stops once its handle is dropped here).
    #[must_use]
    pub fn with_access_log(mut self, settings: audit::access_log::AccessLogSettings) -> Self {
        self.access_log = audit::access_log::AccessLog::spawn(self.db().clone(), settings);
        self
    }

    /// The batched writer for high-volume read entries (`token.accessed`).
    #[must_use]
    pub fn access_log(&self) -> &audit::access_log::AccessLog {
        &self.access_log
    }

    /// Writes what is queued and closes the database: the last step of shutdown.
    pub async fn shutdown(&self) {
        self.access_log.flush().await;
        self.db.clone().close().await;
    }

    /// The token vault.
    #[must_use]
    pub fn vault(&self) -> &Vault {
        &self.vault
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

    /// Builds the use cases over `database` (opened by the server) and the token vault;
    /// see [`App::new`].
    #[must_use]
    pub fn open(database: storage::Database, vault: Vault) -> Self {
        Self::new(database.0, vault)
    }

    /// The database as startup, the CLI and metrics see it: migrations, pools.
    #[must_use]
    pub fn storage(&self) -> &storage::Database {
        &self.db
    }

    /// The database, for the use cases.
    pub(crate) fn db(&self) -> &Db {
        &self.db.0
    }

    /// The database itself, for tests that read or arrange rows directly.
    #[cfg(feature = "test-support")]
    #[must_use]
    pub fn test_db(&self) -> &Db {
        &self.db.0
    }

    /// Verified service keys, shared by every clone of this `App`.
    pub(crate) fn service_key_cache(&self) -> &service_keys::cache::KeyCache {
        &self.service_keys
    }
}

/// The outbound client of providers, Clerk's API and event subscribers: 10 s per call,
/// 5 s to connect.
fn outbound() -> outbound::Outbound {
    outbound::Outbound::new(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("the outbound HTTP client cannot start: {e}"))
}
