//! Background jobs (issue 6): the per-job row that carries the schedule watermark and the
//! one-runner lock, the durable run queue (one row per scheduled tick or manual request,
//! unique per tick so every replica may try to enqueue it and exactly one succeeds), the
//! daily usage counts, and the two audit columns that make entries pseudonymizable
//! without breaking the hash chain (see `app::audit`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(string(Jobs::Name).primary_key())
                // Ticks at or before this are never enqueued again (first sight, then the
                // newest enqueued tick): a fresh database does not fire every job at once.
                .col(timestamp_with_time_zone(Jobs::ScheduledThrough))
                // The one-runner lock: a conditional UPDATE takes it, a lease bounds it.
                .col(text_null(Jobs::LockedBy))
                .col(timestamp_with_time_zone_null(Jobs::LockedUntil))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(JobRuns::Table)
                .col(big_pk_auto(JobRuns::Id))
                .col(string(JobRuns::Job))
                // `cron:<tick>` or `manual:<uuid>`: unique per job, so a tick is enqueued once.
                .col(string(JobRuns::RunKey))
                .col(string(JobRuns::Trigger))
                .col(string(JobRuns::Status))
                .col(integer(JobRuns::Attempts).default(0))
                .col(integer(JobRuns::MaxAttempts))
                .col(timestamp_with_time_zone(JobRuns::RunAfter))
                .col(timestamp_with_time_zone_null(JobRuns::LockedUntil))
                .col(text_null(JobRuns::LastError))
                .col(json_binary_null(JobRuns::Result))
                .col(timestamp_with_time_zone(JobRuns::CreatedAt))
                .col(timestamp_with_time_zone_null(JobRuns::StartedAt))
                .col(timestamp_with_time_zone_null(JobRuns::FinishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_job_runs_job_key")
                .table(JobRuns::Table)
                .col(JobRuns::Job)
                .col(JobRuns::RunKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_job_runs_due")
                .table(JobRuns::Table)
                .col(JobRuns::Job)
                .col(JobRuns::Status)
                .col(JobRuns::RunAfter)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(UsageStats::Table)
                .col(string(UsageStats::Day))
                .col(string(UsageStats::Metric))
                .col(string(UsageStats::Dimension))
                .col(big_integer(UsageStats::Value))
                .col(timestamp_with_time_zone(UsageStats::ComputedAt))
                .primary_key(
                    Index::create()
                        .col(UsageStats::Day)
                        .col(UsageStats::Metric)
                        .col(UsageStats::Dimension),
                )
                .to_owned(),
        )
        .await?;
        // Two statements: SQLite's ALTER TABLE adds one column at a time.
        m.alter_table(
            Table::alter()
                .table(AuditLog::Table)
                .add_column(text_null(AuditLog::PiiDigest))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditLog::Table)
                .add_column(timestamp_with_time_zone_null(AuditLog::PseudonymizedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["usage_stats", "job_runs", "jobs"] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        for c in [AuditLog::PseudonymizedAt, AuditLog::PiiDigest] {
            m.alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .drop_column(c)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Name,
    ScheduledThrough,
    LockedBy,
    LockedUntil,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    Job,
    RunKey,
    Trigger,
    Status,
    Attempts,
    MaxAttempts,
    RunAfter,
    LockedUntil,
    LastError,
    Result,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum UsageStats {
    Table,
    Day,
    Metric,
    Dimension,
    Value,
    ComputedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    PiiDigest,
    PseudonymizedAt,
}
