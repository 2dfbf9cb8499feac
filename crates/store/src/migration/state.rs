//! Where the database's schema stands against this binary's migrations, for expand/contract
//! upgrades (docs/adr/0007-expand-contract-migrations.md).
//!
//! sea-orm-migration refuses a database that records a migration it has no file for ("this
//! migration has been applied but its file is missing"): the previous release could then not
//! start on the schema of the next one, and a rollback would be an outage. We compare the
//! recorded versions ourselves: one this binary does not know is reported (and tolerated),
//! one it knows but the database lacks is pending (and keeps `/ready` at 503).

use std::collections::BTreeSet;

use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use sea_orm_migration::{MigratorTrait, SchemaManager, seaql_migrations};

use super::Migrator;
use crate::StoreError;

/// The schema's standing against this binary's migrations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationState {
    /// Migrations of this binary the database has not applied, oldest first.
    pub pending: Vec<String>,
    /// Migrations the database records that this binary does not know (a newer release
    /// applied them), in name order.
    pub unknown: Vec<String>,
}

impl MigrationState {
    /// True when every migration of this binary is applied.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The names of this binary's migrations, oldest first.
#[must_use]
pub fn known_migrations() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// Reads the migration table (without creating it: a database never migrated has every
/// migration pending).
///
/// # Errors
/// When the database does not answer.
pub async fn read(db: &DatabaseConnection) -> Result<MigrationState, StoreError> {
    let applied: BTreeSet<String> = if SchemaManager::new(db).has_table("seaql_migrations").await? {
        seaql_migrations::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        BTreeSet::new()
    };
    let known = known_migrations();
    let known_set: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    Ok(MigrationState {
        pending: known
            .iter()
            .filter(|name| !applied.contains(*name))
            .cloned()
            .collect(),
        unknown: applied
            .into_iter()
            .filter(|name| !known_set.contains(name.as_str()))
            .collect(),
    })
}

/// Applies the pending migrations. A database carrying migrations of a newer release is
/// left as it is, with a warning: expand/contract keeps this release working on it. Both at
/// once (this release has a migration the newer one never applied) means the releases have
/// diverged, and nothing is applied.
///
/// # Errors
/// When a migration fails, or the schema has diverged.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    let state = read(db).await?;
    if state.unknown.is_empty() {
        Migrator::up(db, None).await?;
        return Ok(());
    }
    if !state.pending.is_empty() {
        return Err(DbErr::Custom(format!(
            "the schema has diverged from this release: it lacks {} and carries {} that this release does not know; deploy a release that knows both",
            state.pending.join(", "),
            state.unknown.join(", ")
        ))
        .into());
    }
    warn_unknown(&state);
    Ok(())
}

/// Logs the migrations of a newer release the database carries, if any.
pub fn warn_unknown(state: &MigrationState) {
    if !state.unknown.is_empty() {
        tracing::warn!(
            unknown_migrations = %state.unknown.join(", "),
            "the database carries migrations this release does not know (a newer release applied them); serving on it, as expand/contract allows (docs/adr/0007-expand-contract-migrations.md)"
        );
    }
}
