//! The index that lets a presented key be found by its current or its previous hash in one
//! statement (`store::service_keys::find_active_by_hash`, `key_hash = $1 OR
//! previous_key_hash = $1`): both sides of the OR use an index on both engines.
//!
//! Expand only (ADR 0007). Built `CONCURRENTLY` on Postgres, outside a transaction, like
//! `m20261202_000020_work_list_indexes` (an interrupted build leaves an INVALID index:
//! `DROP INDEX CONCURRENTLY idx_service_keys_previous_key_hash` and migrate again).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000031_service_key_previous_hash_index"
    }
}

const INDEX: &str = "idx_service_keys_previous_key_hash";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let concurrently = match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "CONCURRENTLY ",
            _ => "",
        };
        let sql = format!(
            "CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON service_keys (previous_key_hash)"
        );
        m.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(INDEX)
                .table(Alias::new("service_keys"))
                .to_owned(),
        )
        .await
    }

    /// `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }
}
