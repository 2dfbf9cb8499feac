//! Preferences storage: one row of overrides per user with a version for optimistic
//! concurrency, and an append-only history of every version (its merge patch and the
//! overrides after it). A new version and its history row are written by the caller's
//! transaction, so they commit together, with the audit entry.

use chrono::{DateTime, Utc};
use domain::preferences::{CURRENT_SCHEMA_VERSION, Overrides, migrate};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryInsertResult,
    sea_query::{Expr, ExprTrait},
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{preference_history, preference_overrides},
};

/// A user's stored overrides row.
pub type StoredPreferences = preference_overrides::Model;
/// One version in a user's history.
pub type HistoryEntry = preference_history::Model;

/// The user's row, if they ever changed a preference.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db preferences.get", skip_all)]
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> Result<Option<StoredPreferences>, StoreError> {
    Ok(preference_overrides::Entity::find_by_id(user_id)
        .one(conn)
        .await?)
}

/// The user's row, locked until the caller's transaction ends (Postgres `FOR UPDATE`; the
/// single SQLite writer connection already serializes write transactions).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db preferences.get_for_update", skip_all)]
pub async fn get_for_update<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> Result<Option<StoredPreferences>, StoreError> {
    Ok(preference_overrides::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(conn)
        .await?)
}

/// A version to write.
#[derive(Clone, Debug)]
pub struct NewVersion {
    pub user_id: Uuid,
    /// The version the change was computed from (0: the user has no row yet).
    pub expected_version: i64,
    /// The overrides after the change (current schema version).
    pub overrides: Value,
    /// The merge patch from the previous overrides to these.
    pub changes: Value,
    /// `kind:id` of the actor.
    pub changed_by: String,
    pub at: DateTime<Utc>,
}

/// What a conditional write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written as this version.
    Written { version: i64 },
    /// Another writer got there first: the stored version is not the expected one.
    /// Nothing was written.
    Stale,
}

/// Writes `new` as version `expected_version + 1` only if the stored version is still
/// `expected_version` (`UPDATE … WHERE version = ?`, or an insert that yields to an existing
/// row), and appends its history row. Of two writers with the same expected version exactly
/// one gets `Written`. Call inside a transaction: the two writes must commit together.
///
/// # Errors
/// When the database fails (e.g. the user row does not exist).
#[tracing::instrument(name = "db preferences.write_version", skip_all)]
pub async fn write_version<C: ConnectionTrait>(
    conn: &C,
    new: NewVersion,
) -> Result<WriteOutcome, StoreError> {
    let schema_version = i32::try_from(CURRENT_SCHEMA_VERSION).unwrap_or(i32::MAX);
    let written = if new.expected_version == 0 {
        let row = preference_overrides::ActiveModel {
            user_id: Set(new.user_id),
            schema_version: Set(schema_version),
            version: Set(1),
            overrides: Set(new.overrides.clone()),
            updated_at: Set(new.at),
        };
        // ON CONFLICT DO NOTHING: a concurrent first write makes this a no-op, not an error
        // that would abort the caller's Postgres transaction.
        match preference_overrides::Entity::insert(row)
            .on_conflict_do_nothing_on([preference_overrides::Column::UserId])
            .exec_without_returning(conn)
            .await?
        {
            TryInsertResult::Inserted(n) => n,
            TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
        }
    } else {
        preference_overrides::Entity::update_many()
            .col_expr(
                preference_overrides::Column::Version,
                Expr::col(preference_overrides::Column::Version).add(1),
            )
            .set(preference_overrides::ActiveModel {
                user_id: NotSet,
                version: NotSet,
                schema_version: Set(schema_version),
                overrides: Set(new.overrides.clone()),
                updated_at: Set(new.at),
            })
            .filter(preference_overrides::Column::UserId.eq(new.user_id))
            .filter(preference_overrides::Column::Version.eq(new.expected_version))
            .exec(conn)
            .await?
            .rows_affected
    };
    if written == 0 {
        return Ok(WriteOutcome::Stale);
    }
    let version = new.expected_version + 1;
    preference_history::Entity::insert(preference_history::ActiveModel {
        id: NotSet,
        user_id: Set(new.user_id),
        version: Set(version),
        schema_version: Set(schema_version),
        changes: Set(new.changes),
        snapshot: Set(new.overrides),
        changed_by: Set(new.changed_by),
        changed_at: Set(new.at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(WriteOutcome::Written { version })
}

/// A page of the user's history, newest first: versions below `before` (the cursor of the
/// previous page), at most `limit`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db preferences.history", skip_all)]
pub async fn history<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut q =
        preference_history::Entity::find().filter(preference_history::Column::UserId.eq(user_id));
    if let Some(b) = before {
        q = q.filter(preference_history::Column::Version.lt(b));
    }
    Ok(q.order_by_desc(preference_history::Column::Version)
        .limit(limit)
        .all(conn)
        .await?)
}

/// One version of the user's history.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db preferences.history_version", skip_all)]
pub async fn history_version<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    version: i64,
) -> Result<Option<HistoryEntry>, StoreError> {
    Ok(preference_history::Entity::find()
        .filter(preference_history::Column::UserId.eq(user_id))
        .filter(preference_history::Column::Version.eq(version))
        .one(conn)
        .await?)
}

/// Upgrades up to `limit` stored rows of an older schema version to the current one, in
/// place: same values in the new shape, so the user's `version` (the ETag) stays. Each row
/// is updated only if it did not change meanwhile. Rows whose migration fails are logged
/// and left alone (they are still migrated in memory on every read). Returns how many rows
/// were upgraded; a job calls it until it returns 0.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db preferences.upgrade_batch", skip_all)]
pub async fn upgrade_batch<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<usize, StoreError> {
    let current = i32::try_from(CURRENT_SCHEMA_VERSION).unwrap_or(i32::MAX);
    let rows = preference_overrides::Entity::find()
        .filter(preference_overrides::Column::SchemaVersion.lt(current))
        .order_by_asc(preference_overrides::Column::UserId)
        .limit(limit)
        .all(conn)
        .await?;
    let mut upgraded = 0;
    for row in rows {
        let Some(overrides) = upgrade(&row) else {
            continue;
        };
        let n = preference_overrides::Entity::update_many()
            .set(preference_overrides::ActiveModel {
                user_id: NotSet,
                version: NotSet,
                updated_at: NotSet,
                schema_version: Set(current),
                overrides: Set(overrides.to_value()),
            })
            .filter(preference_overrides::Column::UserId.eq(row.user_id))
            .filter(preference_overrides::Column::Version.eq(row.version))
            .filter(preference_overrides::Column::SchemaVersion.eq(row.schema_version))
            .exec(conn)
            .await?
            .rows_affected;
        upgraded += usize::try_from(n).unwrap_or(0);
    }
    Ok(upgraded)
}

fn upgrade(row: &StoredPreferences) -> Option<Overrides> {
    let from = u32::try_from(row.schema_version).unwrap_or(0);
    let result = migrate(row.overrides.clone(), from).and_then(|doc| Overrides::from_value(&doc));
    match result {
        Ok(o) => Some(o),
        Err(e) => {
            // Field paths only: the values are the user's data.
            let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
            tracing::warn!(user_id = %row.user_id, ?fields, "stored preferences cannot be upgraded");
            None
        }
    }
}
