//! Liveness and readiness: what the operations routes report.

use crate::App;

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
}

impl Readiness {
    /// True when the service can take traffic.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.database == Check::Ok && self.schema == Schema::Current
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
        let schema = match self.db().migration_state().await {
            Ok(state) if state.is_current() => Schema::Current,
            Ok(state) => Schema::Pending(state.pending),
            Err(e) => {
                tracing::warn!(error = %e, "migration status check failed");
                Schema::Unreadable
            }
        };
        Readiness { database, schema }
    }
}
