//! Indexes for the two work lists over all integrations (`token_refresh::expiring_before`,
//! the refresh sweep's; `token_refresh::unchecked_since`, the health check's): both filter
//! on `status IN ('active', 'refresh_failed')` and then on one time. Found by the plan test
//! (`crates/store/tests/plans.rs`): the health check had no index on its time at all, and
//! SQLite (never analyzed) answered both lists through `idx_integrations_status`, i.e. read
//! every connected integration and sorted them, each run. Leading with `status`, the
//! time's range is searched inside each status on both engines.
//!
//! Expand only (ADR 0007): the previous release never names them. On Postgres they are
//! built `CONCURRENTLY`, outside a transaction, so writes to a large table go on meanwhile.
//! A build interrupted on Postgres leaves an INVALID index behind, which `IF NOT EXISTS`
//! would keep: `DROP INDEX CONCURRENTLY <name>` and migrate again.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000020_work_list_indexes"
    }
}

/// (name, columns) on `integrations`.
const INDEXES: [(&str, &str); 2] = [
    ("idx_integrations_status_expires", "status, expires_at"),
    ("idx_integrations_status_checked", "status, last_checked_at"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let concurrently = match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "CONCURRENTLY ",
            _ => "",
        };
        for (name, cols) in INDEXES {
            let sql =
                format!("CREATE INDEX {concurrently}IF NOT EXISTS {name} ON integrations ({cols})");
            m.get_connection().execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(Alias::new("integrations"))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    /// `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }
}
