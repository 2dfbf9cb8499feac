//! Liveness and readiness: what the operations routes report.

use crate::App;

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
    /// Liveness: does the database answer? Never fails: the answer is the report.
    #[tracing::instrument(name = "app ops.database_check", skip_all)]
    pub async fn database_check(&self) -> Check {
        match self.db().ping().await {
            Ok(()) => Check::Ok,
            Err(e) => {
                tracing::warn!(error = %e, "database health check failed");
                Check::Error
            }
        }
    }

    /// Readiness: the database answers and its schema is current.
    #[tracing::instrument(name = "app ops.readiness", skip_all)]
    pub async fn readiness(&self) -> Readiness {
        let database = self.database_check().await;
        let migrations_current = match self.db().migrations_current().await {
            Ok(current) => current,
            Err(e) => {
                tracing::warn!(error = %e, "migration status check failed");
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
