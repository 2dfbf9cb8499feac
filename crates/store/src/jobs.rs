//! The job queue on our own tables: a `jobs` row per registered job (schedule watermark,
//! one-runner lock) and a `job_runs` row per tick or manual request.
//!
//! Every state change is a single conditional statement, so it is atomic on both engines
//! without explicit row locks: a lock is taken by `UPDATE … WHERE locked_until < now`
//! (Postgres re-checks the condition after waiting for a concurrent writer; SQLite has one
//! writer), and a tick is enqueued by an insert that the unique `(job, run_key)` index lets
//! exactly one replica win.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryInsertResult,
    sea_query::{Expr, ExprTrait},
};

use domain::job::RunStatus;

use crate::{
    StoreError,
    entities::{job_runs, jobs},
    status::{col, read},
};

pub use domain::job::JobRun;
/// A stored job row.
pub type JobRow = jobs::Model;

/// The one place a run row becomes the domain record.
impl TryFrom<job_runs::Model> for JobRun {
    type Error = StoreError;

    fn try_from(r: job_runs::Model) -> Result<Self, StoreError> {
        Ok(Self {
            status: read(&r.status)?,
            id: r.id,
            job: r.job,
            run_key: r.run_key,
            trigger: r.trigger,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_after: r.run_after,
            locked_until: r.locked_until,
            last_error: r.last_error,
            result: r.result,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// A row, if any, to its record.
fn record(row: Option<job_runs::Model>) -> Result<Option<JobRun>, StoreError> {
    row.map(JobRun::try_from).transpose()
}

/// Creates the job's row on first sight (its schedule starts at `now`); keeps an existing one.
///
/// # Errors
/// When the database fails.
pub async fn ensure<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    now: DateTime<Utc>,
) -> Result<JobRow, StoreError> {
    if let Some(row) = jobs::Entity::find_by_id(name.to_owned()).one(conn).await? {
        return Ok(row);
    }
    // Another replica may create it at the same moment: theirs is as good as ours.
    jobs::Entity::insert(jobs::ActiveModel {
        name: Set(name.to_owned()),
        scheduled_through: Set(now),
        locked_by: Set(None),
        locked_until: Set(None),
    })
    .on_conflict_do_nothing_on([jobs::Column::Name])
    .exec(conn)
    .await?;
    jobs::Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .ok_or(StoreError::Conflict("job row missing"))
}

/// What to enqueue.
#[derive(Clone, Debug)]
pub struct NewRun<'a> {
    pub job: &'a str,
    /// `cron:<tick>` or `manual:<id>`.
    pub run_key: String,
    /// `schedule` or `manual`.
    pub trigger: &'static str,
    pub max_attempts: i32,
    pub run_after: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Enqueues a run; `None` when a run with the same key exists (another replica won).
///
/// # Errors
/// When the database fails.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    run: NewRun<'_>,
) -> Result<Option<i64>, StoreError> {
    let res = job_runs::Entity::insert(job_runs::ActiveModel {
        id: NotSet,
        job: Set(run.job.to_owned()),
        run_key: Set(run.run_key),
        trigger: Set(run.trigger.to_owned()),
        status: Set(col(RunStatus::Pending).to_owned()),
        attempts: Set(0),
        max_attempts: Set(run.max_attempts),
        run_after: Set(run.run_after),
        locked_until: Set(None),
        last_error: Set(None),
        result: Set(None),
        created_at: Set(run.now),
        started_at: Set(None),
        finished_at: Set(None),
    })
    // ON CONFLICT DO NOTHING: losing the race is normal, not an error (and not a Postgres
    // error log line per replica per tick).
    .on_conflict_do_nothing_on([job_runs::Column::Job, job_runs::Column::RunKey])
    .exec(conn)
    .await?;
    Ok(match res {
        TryInsertResult::Inserted(r) => Some(r.last_insert_id),
        TryInsertResult::Conflicted | TryInsertResult::Empty => None,
    })
}

/// Moves the schedule watermark forward to `tick` (never back).
///
/// # Errors
/// When the database fails.
pub async fn advance_schedule<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    tick: DateTime<Utc>,
) -> Result<(), StoreError> {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::ScheduledThrough, Expr::value(tick))
        .filter(jobs::Column::Name.eq(name))
        .filter(jobs::Column::ScheduledThrough.lt(tick))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes the job's one-runner lock for `owner` until `until`, when nobody holds it (or the
/// holder's lease ran out). True when taken.
///
/// # Errors
/// When the database fails.
pub async fn try_lock<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::LockedBy, Expr::value(owner))
        .col_expr(jobs::Column::LockedUntil, Expr::value(until))
        .filter(jobs::Column::Name.eq(name))
        .filter(
            Condition::any()
                .add(jobs::Column::LockedUntil.is_null())
                .add(jobs::Column::LockedUntil.lt(now)),
        )
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Extends a held lock (and the lease of the run under it). False when it was lost.
///
/// # Errors
/// When the database fails.
pub async fn extend<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    owner: &str,
    run_id: i64,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::LockedUntil, Expr::value(until))
        .filter(jobs::Column::Name.eq(name))
        .filter(jobs::Column::LockedBy.eq(owner))
        .exec(conn)
        .await?;
    job_runs::Entity::update_many()
        .col_expr(job_runs::Column::LockedUntil, Expr::value(until))
        .filter(job_runs::Column::Id.eq(run_id))
        .filter(job_runs::Column::Status.eq(col(RunStatus::Running)))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Releases the lock if `owner` still holds it.
///
/// # Errors
/// When the database fails.
pub async fn unlock<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    owner: &str,
) -> Result<(), StoreError> {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Name.eq(name))
        .filter(jobs::Column::LockedBy.eq(owner))
        .exec(conn)
        .await?;
    Ok(())
}

/// The next run of `job` to execute at `now`: a pending one that is due, or one whose
/// runner vanished (running with an expired lease: it was interrupted).
///
/// # Errors
/// When the database fails.
pub async fn next_due<C: ConnectionTrait>(
    conn: &C,
    job: &str,
    now: DateTime<Utc>,
) -> Result<Option<JobRun>, StoreError> {
    record(
        job_runs::Entity::find()
            .filter(job_runs::Column::Job.eq(job))
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(job_runs::Column::Status.eq(col(RunStatus::Pending)))
                            .add(job_runs::Column::RunAfter.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(job_runs::Column::Status.eq(col(RunStatus::Running)))
                            .add(job_runs::Column::LockedUntil.lt(now)),
                    ),
            )
            .order_by_asc(job_runs::Column::RunAfter)
            .order_by_asc(job_runs::Column::Id)
            .limit(1)
            .one(conn)
            .await?,
    )
}

/// Marks a run started (one more attempt), leased until `until`.
///
/// # Errors
/// When the database fails.
pub async fn start<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    job_runs::Entity::update_many()
        .col_expr(
            job_runs::Column::Status,
            Expr::value(col(RunStatus::Running)),
        )
        .col_expr(
            job_runs::Column::Attempts,
            Expr::col(job_runs::Column::Attempts).add(1),
        )
        .col_expr(job_runs::Column::StartedAt, Expr::value(now))
        .col_expr(job_runs::Column::LockedUntil, Expr::value(until))
        .filter(job_runs::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// How an attempt ended.
#[derive(Clone, Debug)]
pub enum Finish {
    Succeeded(serde_json::Value),
    /// Failed; retried at the given time.
    Retry {
        error: String,
        at: DateTime<Utc>,
    },
    /// Failed for good.
    Failed(String),
}

/// Records the end of attempt number `attempt`. False when the run is no longer that
/// attempt (its lease lapsed and another runner took it over): a stale runner's result
/// never overwrites the newer one.
///
/// # Errors
/// When the database fails.
pub async fn finish<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    attempt: i32,
    now: DateTime<Utc>,
    how: Finish,
) -> Result<bool, StoreError> {
    let none_time = Option::<DateTime<Utc>>::None;
    let q = job_runs::Entity::update_many()
        .filter(job_runs::Column::Id.eq(id))
        .filter(job_runs::Column::Status.eq(col(RunStatus::Running)))
        .filter(job_runs::Column::Attempts.eq(attempt))
        .col_expr(job_runs::Column::LockedUntil, Expr::value(none_time));
    let q = match how {
        Finish::Succeeded(result) => q
            .col_expr(
                job_runs::Column::Status,
                Expr::value(col(RunStatus::Succeeded)),
            )
            .col_expr(job_runs::Column::Result, Expr::value(result))
            .col_expr(
                job_runs::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(job_runs::Column::FinishedAt, Expr::value(now)),
        Finish::Retry { error, at } => q
            .col_expr(
                job_runs::Column::Status,
                Expr::value(col(RunStatus::Pending)),
            )
            .col_expr(job_runs::Column::LastError, Expr::value(error))
            .col_expr(job_runs::Column::RunAfter, Expr::value(at)),
        Finish::Failed(error) => q
            .col_expr(
                job_runs::Column::Status,
                Expr::value(col(RunStatus::Failed)),
            )
            .col_expr(job_runs::Column::LastError, Expr::value(error))
            .col_expr(job_runs::Column::FinishedAt, Expr::value(now)),
    };
    Ok(q.exec(conn).await?.rows_affected == 1)
}

/// The run of `job` attempted most recently (for its status).
///
/// # Errors
/// When the database fails.
pub async fn last_attempted<C: ConnectionTrait>(
    conn: &C,
    job: &str,
) -> Result<Option<JobRun>, StoreError> {
    record(
        job_runs::Entity::find()
            .filter(job_runs::Column::Job.eq(job))
            .filter(job_runs::Column::Attempts.gt(0))
            .order_by_desc(job_runs::Column::StartedAt)
            .order_by_desc(job_runs::Column::Id)
            .limit(1)
            .one(conn)
            .await?,
    )
}

/// The earliest pending run of `job`.
///
/// # Errors
/// When the database fails.
pub async fn next_pending<C: ConnectionTrait>(
    conn: &C,
    job: &str,
) -> Result<Option<JobRun>, StoreError> {
    record(
        job_runs::Entity::find()
            .filter(job_runs::Column::Job.eq(job))
            .filter(job_runs::Column::Status.eq(col(RunStatus::Pending)))
            .order_by_asc(job_runs::Column::RunAfter)
            .limit(1)
            .one(conn)
            .await?,
    )
}

/// The runs of `job`, newest first.
///
/// # Errors
/// When the database fails.
pub async fn runs<C: ConnectionTrait>(
    conn: &C,
    job: &str,
    limit: u64,
) -> Result<Vec<JobRun>, StoreError> {
    job_runs::Entity::find()
        .filter(job_runs::Column::Job.eq(job))
        .order_by_desc(job_runs::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(JobRun::try_from)
        .collect()
}

/// One run by id.
///
/// # Errors
/// When the database fails.
pub async fn run<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Option<JobRun>, StoreError> {
    record(job_runs::Entity::find_by_id(id).one(conn).await?)
}

/// Deletes finished runs (succeeded or failed) that ended before `before`; returns how many.
///
/// # Errors
/// When the database fails.
pub async fn prune<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(job_runs::Entity::delete_many()
        .filter(job_runs::Column::Status.is_in([col(RunStatus::Succeeded), col(RunStatus::Failed)]))
        .filter(job_runs::Column::FinishedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}
