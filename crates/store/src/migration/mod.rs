//! Schema migrations, one file per change, applied in order by `user-service migrate`
//! (and by `serve` at start). sea-orm-migration keeps its own `seaql_migrations` table,
//! and the job queue lives in our own tables (`docs/adr/0004-jobs.md`).

use sea_orm_migration::prelude::*;

pub mod state;

pub use state::MigrationState;

mod m20261125_000001_initial;
mod m20261125_000002_jobs;
mod m20261125_000003_refresh_lease;
mod m20261125_000004_refresh_not_before;
mod m20261202_000001_audit_archive_anchor;
mod m20261202_000010_service_key_epoch;
mod m20261202_000020_work_list_indexes;
mod m20261202_000030_service_key_limits;
mod m20261202_000031_service_key_previous_hash_index;
mod m20261202_000040_scale_indexes;
mod m20261203_000010_connect_sessions;
mod m20261203_000020_accounts_per_provider;

/// `CONCURRENTLY ` on Postgres (an index built or dropped while writes go on; the migration
/// then runs outside a transaction), nothing on SQLite.
fn concurrently(m: &SchemaManager<'_>) -> &'static str {
    match m.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "CONCURRENTLY ",
        _ => "",
    }
}

/// Every migration of the service, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_jobs::Migration),
            Box::new(m20261125_000003_refresh_lease::Migration),
            Box::new(m20261125_000004_refresh_not_before::Migration),
            Box::new(m20261202_000001_audit_archive_anchor::Migration),
            Box::new(m20261202_000010_service_key_epoch::Migration),
            Box::new(m20261202_000020_work_list_indexes::Migration),
            Box::new(m20261202_000030_service_key_limits::Migration),
            Box::new(m20261202_000031_service_key_previous_hash_index::Migration),
            Box::new(m20261202_000040_scale_indexes::Migration),
            Box::new(m20261203_000010_connect_sessions::Migration),
            Box::new(m20261203_000020_accounts_per_provider::Migration),
        ]
    }
}
