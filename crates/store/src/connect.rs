//! Opening the database: pools for SQLite (WAL, foreign keys, one writer) and Postgres.

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{StoreError, metrics::PoolStats};

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine named by a database URL.
    ///
    /// # Errors
    /// When the scheme is neither `sqlite:` nor `postgres:`/`postgresql:`.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::InvalidUrl(
                "must start with sqlite:// or postgres://".to_owned(),
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Largest number of connections in a pool (readers, and Postgres writers).
    pub max_connections: u32,
    /// How long a request may wait for a connection before failing (Postgres unreachable,
    /// pool exhausted), and on SQLite how long a statement waits for a lock another
    /// connection holds: past it the database counts as unavailable (a 503).
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The database: a writer and a reader connection. On Postgres they are the same pool
/// unless a read replica is configured. On SQLite the writer is a single connection, so
/// write transactions queue in the pool instead of failing with `SQLITE_BUSY` when two
/// deferred transactions both try to upgrade to a write lock.
#[derive(Clone, Debug)]
pub struct Db {
    writer: DatabaseConnection,
    reader: DatabaseConnection,
    backend: Backend,
    /// True when the reader is the writer's pool (Postgres without a replica).
    shared_pool: bool,
    /// Set while the replica is known to be unreachable: reads that may lag go to the
    /// primary meanwhile, instead of each waiting out the acquire timeout (see
    /// [`Db::replica_failed`]).
    replica_down: Arc<AtomicBool>,
}

/// How often a replica marked down is tried again.
const REPLICA_PROBE_EVERY: Duration = Duration::from_secs(2);

impl Db {
    /// Opens the pools. A SQLite file (and its folder) is created when missing.
    ///
    /// # Errors
    /// When a URL is invalid or the database cannot be reached.
    pub async fn connect(
        url: &str,
        read_url: Option<&str>,
        opts: &DbOptions,
    ) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url)?;
        match backend {
            Backend::Sqlite => {
                if read_url.is_some() {
                    // One file has no replicas: a replica URL here is a configuration error,
                    // not something to ignore quietly.
                    return Err(StoreError::InvalidUrl(
                        "DATABASE_READ_URL needs a Postgres DATABASE_URL (SQLite has no read replicas)"
                            .to_owned(),
                    ));
                }
                let base = sqlite_options(url)?.busy_timeout(opts.acquire_timeout);
                // No ping before each acquire (sqlx's `test_before_acquire`): a connection
                // to a local file has no far end to lose, and on SQLite each ping is one more
                // hand-off to the connection's thread (a profile of B: 2.4 % of samples).
                let writer = SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(1)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(base.clone())
                    .await?;
                let reader = SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(base.read_only(true))
                    .await?;
                Ok(Self {
                    writer: timed(SqlxSqliteConnector::from_sqlx_sqlite_pool(writer)),
                    reader: timed(SqlxSqliteConnector::from_sqlx_sqlite_pool(reader)),
                    backend,
                    shared_pool: false,
                    replica_down: Arc::default(),
                })
            }
            Backend::Postgres => {
                let writer = timed(SqlxPostgresConnector::from_sqlx_postgres_pool(
                    pg_pool(url, opts).await?,
                ));
                // The replica pool connects lazily: a replica that is down must not stop the
                // primary from serving (`/ready` reports it apart).
                let reader = match read_url {
                    Some(r) => timed(SqlxPostgresConnector::from_sqlx_postgres_pool(
                        pg_lazy_pool(r, opts)?,
                    )),
                    None => writer.clone(),
                };
                Ok(Self {
                    shared_pool: read_url.is_none(),
                    writer,
                    reader,
                    backend,
                    replica_down: Arc::default(),
                })
            }
        }
    }

    /// The connection for writes and for reads that must see the latest write.
    #[must_use]
    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    /// The connection for read-only queries that MAY LAG (a replica when one is configured,
    /// or SQLite's reader pool): listings and profile reads, never a read before a write,
    /// after a lock, or deciding access. Those use [`Db::current`]. While the replica is
    /// marked down, the primary.
    #[must_use]
    pub fn reader(&self) -> &DatabaseConnection {
        if self.replica_down.load(Ordering::Relaxed) {
            &self.writer
        } else {
            &self.reader
        }
    }

    /// Reports that a read on [`Db::reader`] failed with `err`. When the replica is
    /// unreachable (`err` is an availability failure and a replica is configured), it is
    /// marked down: [`Db::reader`] serves the primary until a probe every 2 s finds the
    /// replica answering again. Without this, every read that may lag would wait out the acquire timeout while the
    /// replica is gone.
    pub fn replica_failed(&self, err: &StoreError) {
        if !self.has_replica() || !err.is_unavailable() {
            return;
        }
        if !self.replica_down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %err,
                "the read replica does not answer: reads go to the primary until it does"
            );
            tokio::spawn(probe_replica(
                self.reader.clone(),
                Arc::clone(&self.replica_down),
            ));
        }
    }

    /// The connection for reads that must see every committed write: a read before a
    /// write, after taking a lock or lease, or deciding access (token hand-out, service
    /// keys, authorization). The primary on Postgres, never the replica; on SQLite the
    /// reader pool, which reads the same file and so is always current (and keeps these
    /// reads off the single writer connection).
    #[must_use]
    pub fn current(&self) -> &DatabaseConnection {
        match self.backend {
            Backend::Sqlite => &self.reader,
            Backend::Postgres => &self.writer,
        }
    }

    /// True when a Postgres read replica serves [`Db::reader`].
    #[must_use]
    pub const fn has_replica(&self) -> bool {
        matches!(self.backend, Backend::Postgres) && !self.shared_pool
    }

    /// The engine behind this database.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every pending migration. A database that already carries migrations of a
    /// newer release is served as it is, with a warning (expand/contract, ADR 0007).
    ///
    /// # Errors
    /// When a migration fails (nothing of that migration is kept on Postgres), or this
    /// release and the database's have diverged.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migration::state::migrate(&self.writer).await
    }

    /// Where the schema stands: migrations pending, and migrations of a newer release.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn migration_state(&self) -> Result<crate::migration::MigrationState, StoreError> {
        crate::migration::state::read(&self.writer).await
    }

    /// True when every migration this binary knows has been applied.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn migrations_current(&self) -> Result<bool, StoreError> {
        Ok(self.migration_state().await?.is_current())
    }

    /// A cheap round trip to the primary, for health checks (a replica is checked apart).
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.current().execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// A round trip to the read replica; `None` when none is configured.
    pub async fn ping_replica(&self) -> Option<Result<(), StoreError>> {
        if !self.has_replica() {
            return None;
        }
        let answer = self
            .reader
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(StoreError::from);
        if let Err(e) = &answer {
            self.replica_failed(e);
        }
        Some(answer)
    }

    /// The size of each pool now, sampled when metrics are scraped: `primary` for Postgres
    /// without a replica (one pool serves both), else `writer` and `reader`.
    #[must_use]
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        match self.backend {
            Backend::Sqlite => vec![
                sqlite_stats("writer", self.writer.get_sqlite_connection_pool()),
                sqlite_stats("reader", self.reader.get_sqlite_connection_pool()),
            ],
            Backend::Postgres => {
                let writer = self.writer.get_postgres_connection_pool();
                let reader = self.reader.get_postgres_connection_pool();
                // Without a replica the reader is a clone of the writer's pool.
                if self.shared_pool {
                    vec![pg_stats("primary", writer)]
                } else {
                    vec![pg_stats("writer", writer), pg_stats("reader", reader)]
                }
            }
        }
    }

    /// Closes the pools, waiting for checked-out connections to return.
    pub async fn close(self) {
        // Errors on close only mean the pool was already gone.
        let _ = self.writer.close().await;
        // The reader is a pool of its own on SQLite and with a Postgres replica.
        if !self.shared_pool {
            let _ = self.reader.close().await;
        }
    }
}

/// Tries the replica every [`REPLICA_PROBE_EVERY`] until it answers (then clears `down`)
/// or its pool is closed (shutdown).
async fn probe_replica(replica: DatabaseConnection, down: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(REPLICA_PROBE_EVERY).await;
        if replica.get_postgres_connection_pool().is_closed() {
            return;
        }
        if replica.execute_unprepared("SELECT 1").await.is_ok() {
            tracing::info!("the read replica answers again: reads that may lag go to it");
            down.store(false, Ordering::Release);
            return;
        }
    }
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    let opts =
        SqliteConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
    if let Some(folder) = opts
        .get_filename()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        create_folder(folder)?;
    }
    Ok(opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL makes NORMAL durable against application crashes; only an OS crash can
        // lose the last transactions, never corrupt the file.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true))
}

fn create_folder(folder: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
        path: folder.display().to_string(),
        source,
    })
}

/// A connection that reports every statement's duration (see [`crate::metrics`]).
fn timed(mut conn: DatabaseConnection) -> DatabaseConnection {
    conn.set_metric_callback(crate::metrics::record_statement);
    conn
}

fn sqlite_stats(pool: &'static str, p: &sqlx::SqlitePool) -> PoolStats {
    PoolStats {
        pool,
        size: p.size(),
        idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
        max: p.options().get_max_connections(),
    }
}

fn pg_stats(pool: &'static str, p: &sqlx::PgPool) -> PoolStats {
    PoolStats {
        pool,
        size: p.size(),
        idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
        max: p.options().get_max_connections(),
    }
}

fn pg_lazy_pool(url: &str, opts: &DbOptions) -> Result<sqlx::PgPool, StoreError> {
    let connect =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
    Ok(PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect_lazy_with(connect))
}

async fn pg_pool(url: &str, opts: &DbOptions) -> Result<sqlx::PgPool, StoreError> {
    let connect =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
    Ok(PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(connect)
        .await?)
}
