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

/// What `/ready` needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered.
    pub database: Check,
    /// Every migration of this binary is applied.
    pub migrations_current: bool,
    /// The read replica answered; `None` when none is configured. Not part of
    /// [`Readiness::is_ready`]: every instance reads the same replica, so failing them all
    /// would turn an outage of the reads that may lag into an outage of everything.
    pub replica: Option<Check>,
}

impl Readiness {
    /// True when the service can take traffic.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.database == Check::Ok && self.migrations_current
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
        let migrations_current = database == Check::Ok
            && match tokio::time::timeout(PING_TIMEOUT, self.db().migrations_current()).await {
                Ok(Ok(current)) => current,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "migration status check failed");
                    false
                }
                Err(_) => {
                    tracing::warn!("migration status check timed out");
                    false
                }
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
            migrations_current,
            replica,
        }
    }
}
