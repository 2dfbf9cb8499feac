//! Background jobs: a registry of named jobs (one file per job), each with an optional cron
//! schedule, run by [`Runner`] on the service's own database (`docs/adr/0004-jobs.md`).
//!
//! Contract of a job: idempotent (a rerun of the same tick changes nothing more) and safe to
//! interrupt (each step commits on its own, so a run cut short leaves consistent data and
//! the retry finishes it). A job returns a small JSON result shown by `GET /admin/jobs`, or
//! a [`JobError`]: transient ones are retried with backoff, permanent ones fail at once.
//!
//! Each job calls one method of its feature, where its logic lives: the token refresh
//! sweep (`token_refresh_sweep`, hourly) and the health check (`integration_health`, every
//! 15 minutes) call `tokens`, the purge `users`, the purge of expired flows
//! (`purge_expired_flows`, hourly) `integrations`, the re-encryption `encryption_keys`, the
//! archive `audit`, the backup check and the usage counts `operations`.

mod audit_archive;
mod backup_verify;
pub mod cron;
mod integration_health;
mod key_reencrypt;
mod purge_expired_flows;
mod purge_users;
mod runner;
mod status;
mod token_refresh_sweep;
mod usage_analytics;

use std::{
    collections::BTreeMap, future::Future, path::PathBuf, pin::Pin, sync::Arc, time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use audit_archive::AuditArchive;
pub use backup_verify::BackupVerify;
pub use cron::Cron;
pub use domain::job::JobRun;
pub use integration_health::IntegrationHealth;
pub use key_reencrypt::KeyReencrypt;
pub use purge_expired_flows::PurgeExpiredFlows;
pub use purge_users::PurgeUsers;
pub use runner::{Clock, RunOutcome, Runner};
pub use status::JobStatus;
pub use token_refresh_sweep::TokenRefreshSweep;
pub use usage_analytics::UsageAnalytics;

use crate::{App, AppError, operations::backup::BackupPolicy};

/// What a job's `run` returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send + 'a>>;

/// One kind of background work.
pub trait Job: Send + Sync + 'static {
    /// The stable name (`purge_users`): the path segment of `POST /admin/jobs/{name}/run`,
    /// the configuration key suffix and the metrics label.
    fn name(&self) -> &'static str;

    /// Does the work once.
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a>;
}

/// What a run knows.
#[derive(Clone, Debug)]
pub struct JobCx {
    /// The use cases.
    pub app: App,
    /// The time the run started (the runner's clock: tests move it).
    pub now: DateTime<Utc>,
    /// The run's id in `job_runs`.
    pub run_id: i64,
    /// 1 on the first attempt.
    pub attempt: i32,
}

/// Why a run failed. The message is shown by `GET /admin/jobs`: it never holds secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// What went wrong.
    pub message: String,
    /// True when retrying cannot help (the run fails at once).
    pub permanent: bool,
}

impl JobError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure retries cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        Self::transient(e.to_string())
    }
}

impl From<store::StoreError> for JobError {
    fn from(e: store::StoreError) -> Self {
        Self::transient(e.to_string())
    }
}

/// Settings of the runner and the built-in jobs (from configuration).
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Cron expression per job name; a job without one runs only when asked.
    pub schedules: BTreeMap<String, Cron>,
    /// Attempts per run before it is kept as failed.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt, plus up to half again of jitter.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// How long a runner holds a job without renewing (a crashed runner's job is retried
    /// after this).
    pub lease: Duration,
    /// How often an idle worker looks for due work.
    pub poll_interval: Duration,
    /// Soft-deleted users older than this are purged.
    pub user_retention_days: u32,
    /// Audit entries older than this are archived.
    pub audit_retention_days: u32,
    /// Where audit archives are written.
    pub audit_archive_dir: PathBuf,
    /// Where SQLite snapshots are written, and where Postgres backups are looked for.
    pub backup_dir: PathBuf,
    /// SQLite snapshots kept.
    pub backup_keep: usize,
    /// The newest Postgres backup file must be younger than this.
    pub backup_max_age: Duration,
    /// Ciphertexts per transaction, and transactions per run, of key re-encryption.
    pub reencrypt_batch: u64,
    pub reencrypt_max_batches: u64,
    /// OAuth states and connect sessions expired longer than this are deleted.
    pub expired_flows_grace: Duration,
    /// Rows per statement, and statements per table and run, of that purge.
    pub expired_flows_batch: u64,
    pub expired_flows_max_batches: u64,
}

impl JobSettings {
    /// The schedules the issue names, for tests and as the documented defaults.
    ///
    /// # Panics
    /// Never: the built-in expressions are valid (a unit test parses them).
    #[must_use]
    pub fn default_schedules() -> BTreeMap<String, Cron> {
        DEFAULT_SCHEDULES
            .iter()
            .filter_map(|(n, c)| Cron::parse(c).ok().map(|c| ((*n).to_owned(), c)))
            .collect()
    }
}

/// Job names and their default schedules (`config/default.toml` repeats them).
pub const DEFAULT_SCHEDULES: [(&str, &str); 8] = [
    ("token_refresh_sweep", "0 * * * *"),
    ("integration_health", "*/15 * * * *"),
    ("purge_users", "30 3 * * *"),
    ("audit_archive", "0 4 * * 0"),
    ("usage_analytics", "15 0 * * *"),
    ("backup_verify", "0 5 * * *"),
    ("key_reencrypt", "45 * * * *"),
    ("purge_expired_flows", "20 * * * *"),
];

/// A registered job and its schedule.
#[derive(Clone)]
pub struct Registered {
    pub job: Arc<dyn Job>,
    pub schedule: Option<Cron>,
}

/// The jobs a runner knows, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    jobs: Vec<Registered>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.jobs.iter().map(|r| r.job.name()))
            .finish()
    }
}

impl Registry {
    /// An empty registry (tests add their own jobs).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The service's jobs with their configured schedules.
    #[must_use]
    pub fn standard(s: &JobSettings) -> Self {
        let mut r = Self::new();
        let schedule = |name: &str| s.schedules.get(name).cloned();
        r.add(
            Arc::new(PurgeUsers {
                retention_days: s.user_retention_days,
            }),
            schedule("purge_users"),
        );
        r.add(
            Arc::new(AuditArchive {
                retention_days: s.audit_retention_days,
                dir: s.audit_archive_dir.clone(),
            }),
            schedule("audit_archive"),
        );
        r.add(Arc::new(UsageAnalytics), schedule("usage_analytics"));
        r.add(
            Arc::new(BackupVerify {
                policy: BackupPolicy {
                    dir: s.backup_dir.clone(),
                    keep: s.backup_keep,
                    max_age: s.backup_max_age,
                },
            }),
            schedule("backup_verify"),
        );
        r.add(
            Arc::new(KeyReencrypt {
                batch_size: s.reencrypt_batch,
                max_batches: s.reencrypt_max_batches,
            }),
            schedule("key_reencrypt"),
        );
        r.add(
            Arc::new(PurgeExpiredFlows {
                grace: s.expired_flows_grace,
                batch_size: s.expired_flows_batch,
                max_batches: s.expired_flows_max_batches,
            }),
            schedule("purge_expired_flows"),
        );
        r.add(
            Arc::new(TokenRefreshSweep::default()),
            schedule("token_refresh_sweep"),
        );
        r.add(
            Arc::new(IntegrationHealth::default()),
            schedule("integration_health"),
        );
        r
    }

    /// Adds a job (replacing one of the same name).
    pub fn add(&mut self, job: Arc<dyn Job>, schedule: Option<Cron>) {
        self.jobs.retain(|r| r.job.name() != job.name());
        self.jobs.push(Registered { job, schedule });
    }

    /// The registered jobs.
    #[must_use]
    pub fn jobs(&self) -> &[Registered] {
        &self.jobs
    }

    /// One job by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.jobs.iter().find(|r| r.job.name() == name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_schedules_parse() {
        for (name, text) in super::DEFAULT_SCHEDULES {
            assert!(super::Cron::parse(text).is_ok(), "{name}: {text}");
        }
    }
}
