//! Schema migrations, one file per change, applied in order by `user-service migrate`
//! (and by `serve` at start). sea-orm-migration keeps its own `seaql_migrations` table,
//! so the job queue's tables (apalis, sqlx migrations) never clash with ours.

use sea_orm_migration::prelude::*;

mod m20261125_000001_initial;

/// Every migration of the service, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261125_000001_initial::Migration)]
    }
}
