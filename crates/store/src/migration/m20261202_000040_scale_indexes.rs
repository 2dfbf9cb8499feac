//! Indexes that keep the hot reads flat at a million users (`seed --measure`, SQLite):
//!
//! - The 30-day `/audit/stats` by action read every entry of its range from the table:
//!   `idx_audit_log_occurred_at` finds the range but holds no `action`, so grouping by it
//!   looked each row up (4.2 s over 1M entries). `(occurred_at, action)` answers both
//!   stats and every other `occurred_at` range (the archive's) from the index alone; it
//!   replaces the one-column index rather than adding a second one to every audit write.
//! - The work lists (`token_refresh::expiring_before`, `unchecked_since`) are read one
//!   status at a time in `(time, id)` order and stopped at the batch: with the id in the
//!   index that order is the index's, so nothing is sorted (1.7 s when all of 1M
//!   integrations were due for a health check). They replace m20261202_000020's two.
//!
//! No release names an index in a statement, so the previous release's queries run on the
//! new ones: each is created, then its predecessor dropped, in this one step. On Postgres
//! both happen `CONCURRENTLY`, outside a transaction, so writes go on meanwhile (see
//! m20261202_000020 for an interrupted build).

use sea_orm_migration::prelude::*;

use super::concurrently;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000040_scale_indexes"
    }
}

/// (table, new index, its columns, the index it replaces, that one's columns).
const REPLACED: [(&str, &str, &str, &str, &str); 3] = [
    (
        "audit_log",
        "idx_audit_log_occurred_action",
        "occurred_at, action",
        "idx_audit_log_occurred_at",
        "occurred_at",
    ),
    (
        "integrations",
        "idx_integrations_status_expires_id",
        "status, expires_at, id",
        "idx_integrations_status_expires",
        "status, expires_at",
    ),
    (
        "integrations",
        "idx_integrations_status_checked_id",
        "status, last_checked_at, id",
        "idx_integrations_status_checked",
        "status, last_checked_at",
    ),
];

async fn create(m: &SchemaManager<'_>, table: &str, name: &str, cols: &str) -> Result<(), DbErr> {
    let sql = format!(
        "CREATE INDEX {}IF NOT EXISTS {name} ON {table} ({cols})",
        concurrently(m)
    );
    m.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

async fn drop(m: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    let sql = format!("DROP INDEX {}IF EXISTS {name}", concurrently(m));
    m.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, new, cols, old, _) in REPLACED {
            create(m, table, new, cols).await?;
            drop(m, old).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, new, _, old, cols) in REPLACED {
            create(m, table, old, cols).await?;
            drop(m, new).await?;
        }
        Ok(())
    }

    /// `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }
}
