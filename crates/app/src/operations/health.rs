//! Liveness and readiness: what the operations routes report.

use std::time::Duration;

use crate::App;

/// How long the health checks wait for the database. Probes (Kubernetes: 1 s by default)
/// give up sooner than the pool's acquire timeout; a liveness answer that comes too late
/// would get a healthy process restarted during a database outage.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a dependency answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    Error,
}

/// Where the schema stands against this binary's migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schema {
    /// Every migration of this binary is applied (a newer release's extra ones are fine).
    Current,
    /// These migrations of this binary are not applied, oldest first.
    Pending(Vec<String>),
    /// The migration table could not be read.
    Unreadable,
}

/// What `/ready` needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered.
    pub database: Check,
    /// The schema's standing.
    pub schema: Schema,
    /// The read replica answered; `None` when none is configured. Not part of
    /// [`Readiness::is_ready`]: every instance reads the same replica, so failing them all
    /// would turn an outage of the reads that may lag into an outage of everything.
    pub replica: Option<Check>,
}

impl Readiness {
    /// True when the service can take traffic.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.database == Check::Ok && self.schema == Schema::Current
    }
}

impl App {
    /// Liveness: does the database answer (within a second)? Never fails: the answer is
    /// the report.
    #[tracing::instrument(name = "app ops.database_check", skip_all)]
    pub async fn database_check(&self) -> Check {
        match tokio::time::timeout(PING_TIMEOUT, self.db().ping()).await {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "database health check failed");
                Check::Error
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = PING_TIMEOUT.as_millis(),
                    "database health check timed out"
                );
                Check::Error
            }
        }
    }

    /// Readiness: the database answers and its schema is current.
    #[tracing::instrument(name = "app ops.readiness", skip_all)]
    pub async fn readiness(&self) -> Readiness {
        let database = self.database_check().await;
        // A database that did not answer is not asked again: /ready answers in a second.
        let schema = if database == Check::Ok {
            match tokio::time::timeout(PING_TIMEOUT, self.db().migration_state()).await {
                Ok(Ok(state)) if state.is_current() => Schema::Current,
                Ok(Ok(state)) => Schema::Pending(state.pending),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "migration status check failed");
                    Schema::Unreadable
                }
                Err(_) => {
                    tracing::warn!("migration status check timed out");
                    Schema::Unreadable
                }
            }
        } else {
            Schema::Unreadable
        };
        let replica = self.db().ping_replica().await.map(|r| match r {
            Ok(()) => Check::Ok,
            Err(e) => {
                tracing::warn!(error = %e, "read replica health check failed");
                Check::Error
            }
        });
        Readiness {
            database,
            schema,
            replica,
        }
    }
}
