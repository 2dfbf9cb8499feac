//! The runner: enqueues each scheduled tick once across replicas, claims due runs under a
//! per-job lock (so a job never runs twice at once, on any replica), runs them with a
//! renewed lease, and retries failures with exponential backoff and jitter. A worker is
//! this in a loop; tests call [`Runner::run_until_idle`] with a [`Clock`] they move.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, SubsecRound, Utc};
use domain::job::RunStatus;
use serde::Serialize;
use serde_json::Value;
use store::jobs::{self as q, Finish, NewRun};

use super::{JobCx, JobError, JobRun, JobSettings, Registered, Registry};
use crate::{App, AppError};

/// Finished runs are kept this long.
const RUN_RETENTION_DAYS: i64 = 90;

/// The time as the runner sees it: the system clock, unless a test set it.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<Mutex<Option<DateTime<Utc>>>>);

impl Clock {
    /// Now, at the microsecond precision the database keeps.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        let fixed = *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fixed.unwrap_or_else(Utc::now).trunc_subsecs(6)
    }

    /// Freezes the clock at `t` (tests).
    pub fn set(&self, t: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(t);
    }
}

/// What one executed attempt came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunOutcome {
    pub job: String,
    pub run_id: i64,
    pub attempt: i32,
    /// `succeeded`, `retry` (failed, will run again), `failed` (kept as failed) or
    /// `abandoned` (this runner's lease lapsed and another runner took the run over).
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// Runs the jobs of a [`Registry`]; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Runner {
    pub(super) app: App,
    pub(super) registry: Registry,
    settings: JobSettings,
    /// Identifies this runner in the job locks.
    owner: String,
    pub(super) clock: Clock,
}

impl Runner {
    /// A runner over `app` for the jobs of `registry`.
    #[must_use]
    pub fn new(app: App, registry: Registry, settings: JobSettings) -> Self {
        Self {
            app,
            registry,
            settings,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            clock: Clock::default(),
        }
    }

    /// The clock (tests set it).
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The registry.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Enqueues, for every scheduled job, the newest tick that is due and not yet enqueued
    /// (missed ticks collapse into one). Every replica may do this at the same time: the
    /// unique `(job, run_key)` index lets exactly one insert win. Returns the runs created.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn schedule_due(&self) -> Result<u64, AppError> {
        let now = self.clock.now();
        let conn = self.app.db().writer();
        // Finished runs are history for `/admin/jobs`; past this they only take space.
        q::prune(conn, now - chrono::Duration::days(RUN_RETENTION_DAYS)).await?;
        let mut created = 0;
        for reg in self.registry.jobs() {
            let name = reg.job.name();
            let row = q::ensure(conn, name, now).await?;
            let Some(cron) = &reg.schedule else { continue };
            // Bound the walk over missed ticks (a minutely job after a month offline).
            let from = row.scheduled_through.max(now - chrono::Duration::days(8));
            let mut tick = match cron.next_after(from) {
                Some(t) if t <= now => t,
                _ => continue,
            };
            while let Some(next) = cron.next_after(tick).filter(|n| *n <= now) {
                tick = next;
            }
            let run = NewRun {
                job: name,
                run_key: format!("cron:{}", tick.to_rfc3339()),
                trigger: "schedule",
                max_attempts: self.max_attempts(),
                run_after: tick,
                now,
            };
            if q::enqueue(conn, run).await?.is_some() {
                created += 1;
            }
            q::advance_schedule(conn, name, tick).await?;
        }
        Ok(created)
    }

    /// Enqueues a run of `name` now (`POST /admin/jobs/{name}/run`); returns its id.
    ///
    /// # Errors
    /// `NotFound` for a name no job has; when the database fails.
    pub async fn enqueue_now(&self, name: &str) -> Result<i64, AppError> {
        let reg = self.registry.get(name).ok_or(AppError::NotFound("job"))?;
        let now = self.clock.now();
        let conn = self.app.db().writer();
        q::ensure(conn, reg.job.name(), now).await?;
        let run = NewRun {
            job: reg.job.name(),
            run_key: format!("manual:{}", uuid::Uuid::now_v7()),
            trigger: "manual",
            max_attempts: self.max_attempts(),
            run_after: now,
            now,
        };
        q::enqueue(conn, run)
            .await?
            .ok_or_else(|| AppError::Conflict("a run with this key exists".to_owned()))
    }

    /// Schedules due ticks, then runs due runs one after another until none is left (or
    /// every job with due work is held by another runner). The deterministic test hook.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn run_until_idle(&self) -> Result<Vec<RunOutcome>, AppError> {
        self.schedule_due().await?;
        let mut done = Vec::new();
        while let Some(outcome) = self.run_next().await? {
            done.push(outcome);
        }
        Ok(done)
    }

    /// Claims and executes one due run, if any job has one and is not held elsewhere.
    ///
    /// # Errors
    /// When the database fails (the job's own failures are outcomes, not errors).
    pub async fn run_next(&self) -> Result<Option<RunOutcome>, AppError> {
        let conn = self.app.db().writer();
        for reg in self.registry.jobs() {
            let name = reg.job.name();
            let now = self.clock.now();
            if q::next_due(conn, name, now).await?.is_none() {
                continue;
            }
            if !q::try_lock(conn, name, &self.owner, now, now + self.lease()).await? {
                continue; // running elsewhere: never twice at once
            }
            // Re-read under the lock: another runner may have taken it meanwhile.
            let run = match q::next_due(conn, name, now).await {
                Ok(Some(run)) => run,
                Ok(None) => {
                    q::unlock(conn, name, &self.owner).await?;
                    continue;
                }
                Err(e) => {
                    let _ = q::unlock(conn, name, &self.owner).await;
                    return Err(e.into());
                }
            };
            let outcome = self.execute(reg, run).await;
            q::unlock(conn, name, &self.owner).await?;
            return outcome.map(Some);
        }
        Ok(None)
    }

    async fn execute(&self, reg: &Registered, run: JobRun) -> Result<RunOutcome, AppError> {
        let conn = self.app.db().writer();
        let name = reg.job.name();
        let now = self.clock.now();
        let attempt = run.attempts + 1;
        q::start(conn, run.id, now, now + self.lease()).await?;
        let cx = JobCx {
            app: self.app.clone(),
            now,
            run_id: run.id,
            attempt,
        };
        let started = Instant::now();
        let result = self.run_with_lease(reg, cx).await;
        let elapsed = started.elapsed();
        let end = self.clock.now();
        let (outcome, error, finish) = match result {
            Ok(value) => (
                RunStatus::Succeeded.as_str(),
                None,
                Finish::Succeeded(value),
            ),
            Err(e) if !e.permanent && attempt < run.max_attempts => {
                let at = (end
                    + chrono::Duration::from_std(self.backoff(attempt)).unwrap_or_default())
                // Stored at microseconds: compare what will be read back.
                .trunc_subsecs(6);
                let msg = e.message;
                ("retry", Some(msg.clone()), Finish::Retry { error: msg, at })
            }
            Err(e) => (
                RunStatus::Failed.as_str(),
                Some(e.message.clone()),
                Finish::Failed(e.message),
            ),
        };
        let (outcome, error) = if q::finish(conn, run.id, attempt, end, finish).await? {
            (outcome, error)
        } else {
            // Our lease lapsed and another runner took the run over: its result stands.
            (
                "abandoned",
                error.or(Some("lease lapsed; another runner took over".to_owned())),
            )
        };
        if let Some(e) = &error {
            tracing::warn!(job = name, run_id = run.id, attempt, outcome, error = %e, "job attempt failed");
        } else {
            tracing::info!(
                job = name,
                run_id = run.id,
                attempt,
                elapsed_ms = elapsed.as_millis() as u64,
                "job succeeded"
            );
        }
        metrics::counter!("user_service_job_runs_total", "job" => name, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("user_service_job_duration_seconds", "job" => name, "outcome" => outcome)
            .record(elapsed.as_secs_f64());
        Ok(RunOutcome {
            job: name.to_owned(),
            run_id: run.id,
            attempt,
            outcome,
            error,
        })
    }

    /// Runs the job in its own task (a panic becomes a failed attempt), renewing the lease
    /// while it runs; when the lease is lost the task is cancelled and the attempt failed.
    async fn run_with_lease(&self, reg: &Registered, cx: JobCx) -> Result<Value, JobError> {
        let job = reg.job.clone();
        let run_id = cx.run_id;
        let mut task = tokio::spawn(async move { job.run(&cx).await });
        let mut renew =
            tokio::time::interval((self.settings.lease / 3).max(Duration::from_millis(100)));
        renew.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                joined = &mut task => {
                    return joined.unwrap_or_else(|e| Err(JobError::transient(format!("job task ended abnormally: {e}"))));
                }
                _ = renew.tick() => {
                    let until = self.clock.now() + self.lease();
                    let kept = q::extend(self.app.db().writer(), reg.job.name(), &self.owner, run_id, until).await;
                    if !matches!(kept, Ok(true)) {
                        task.abort();
                        return Err(JobError::transient("lost the job lease (another runner took over); attempt abandoned"));
                    }
                }
            }
        }
    }

    /// Delay before retry `attempt + 1`: base · 2^(attempt−1), capped, plus a random
    /// 0–50 % so replicas that failed together do not retry together. Strictly growing
    /// below the cap (the next base is already past this one's jitter).
    #[must_use]
    pub fn backoff(&self, attempt: i32) -> Duration {
        crate::backoff::exponential(
            self.settings.retry_base,
            attempt,
            self.settings.retry_max,
            0.5,
        )
    }

    /// The newest runs of `name` (operators and tests).
    ///
    /// # Errors
    /// `NotFound` for an unknown job; when the database fails.
    pub async fn runs(&self, name: &str, limit: u64) -> Result<Vec<JobRun>, AppError> {
        self.registry.get(name).ok_or(AppError::NotFound("job"))?;
        Ok(q::runs(self.app.db().writer(), name, limit).await?)
    }

    /// The worker: schedule, run what is due, sleep `poll_interval`, until `stop` turns
    /// true. A run in progress is finished first (drain); nothing new starts after `stop`.
    pub async fn work(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(owner = %self.owner, jobs = ?self.registry, "job worker started");
        while !*stop.borrow() {
            if let Err(e) = self.schedule_due().await {
                tracing::warn!(error = %e, "scheduling jobs failed; retrying at the next poll");
            }
            while !*stop.borrow() {
                match self.run_next().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "running jobs failed; retrying at the next poll");
                        break;
                    }
                }
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::info!(owner = %self.owner, "job worker stopped");
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(10))
    }

    fn max_attempts(&self) -> i32 {
        i32::try_from(self.settings.max_attempts.max(1)).unwrap_or(i32::MAX)
    }
}
