//! Usage analytics: the counts the daily job computes, and the table it stores them in.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use crate::{
    StoreError,
    entities::{preference_history, usage_stats, users},
};

/// One stored count.
pub type UsageStat = usage_stats::Model;

/// One count to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub metric: &'static str,
    pub dimension: String,
    pub value: i64,
}

fn count(metric: &'static str, dimension: impl Into<String>, value: u64) -> Count {
    Count {
        metric,
        dimension: dimension.into(),
        value: i64::try_from(value).unwrap_or(i64::MAX),
    }
}

/// Counts for the day `[from, to)`: users (not deleted), active users (signed in during the
/// 30 days before `to`), sign-ins and preference changes during the day, and integrations
/// by `provider/status` (as they stand when counted).
///
/// # Errors
/// When the database fails.
pub async fn compute<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Count>, StoreError> {
    let live = || users::Entity::find().filter(users::Column::DeletedAt.is_null());
    let mut out = vec![
        count("users_total", "", live().count(conn).await?),
        count(
            "active_users_30d",
            "",
            live()
                .filter(users::Column::LastSignInAt.gte(to - chrono::Duration::days(30)))
                .filter(users::Column::LastSignInAt.lt(to))
                .count(conn)
                .await?,
        ),
        count(
            "sign_ins",
            "",
            users::Entity::find()
                .filter(users::Column::LastSignInAt.gte(from))
                .filter(users::Column::LastSignInAt.lt(to))
                .count(conn)
                .await?,
        ),
        count(
            "preference_changes",
            "",
            preference_history::Entity::find()
                .filter(preference_history::Column::ChangedAt.gte(from))
                .filter(preference_history::Column::ChangedAt.lt(to))
                .count(conn)
                .await?,
        ),
    ];
    for (provider, status, n) in crate::token_refresh::stored_provider_status_counts(conn).await? {
        out.push(Count {
            metric: "integrations",
            dimension: format!("{provider}/{status}"),
            value: n,
        });
    }
    Ok(out)
}

/// Replaces the stored counts of `day` (idempotent: a rerun overwrites). Call in a
/// transaction so readers never see half a day.
///
/// # Errors
/// When the database fails.
pub async fn replace_day<C: ConnectionTrait>(
    conn: &C,
    day: &str,
    counts: Vec<Count>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    usage_stats::Entity::delete_many()
        .filter(usage_stats::Column::Day.eq(day))
        .exec(conn)
        .await?;
    if counts.is_empty() {
        return Ok(());
    }
    let rows = counts.into_iter().map(|c| usage_stats::ActiveModel {
        day: Set(day.to_owned()),
        metric: Set(c.metric.to_owned()),
        dimension: Set(c.dimension),
        value: Set(c.value),
        computed_at: Set(at),
    });
    usage_stats::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The stored counts of `day`, by metric then dimension.
///
/// # Errors
/// When the database fails.
pub async fn day<C: ConnectionTrait>(conn: &C, day: &str) -> Result<Vec<UsageStat>, StoreError> {
    Ok(usage_stats::Entity::find()
        .filter(usage_stats::Column::Day.eq(day))
        .order_by_asc(usage_stats::Column::Metric)
        .order_by_asc(usage_stats::Column::Dimension)
        .all(conn)
        .await?)
}

/// Row counts of the main tables (backup verification compares them with a snapshot).
///
/// # Errors
/// When the database fails.
pub async fn table_counts<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<(&'static str, i64)>, StoreError> {
    let mut out = Vec::new();
    for table in COUNTED_TABLES {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await?
            .ok_or(StoreError::Conflict("count returned no row"))?;
        out.push((table, row.try_get::<i64>("", "n")?));
    }
    Ok(out)
}

/// The tables whose row counts a backup must reproduce.
pub const COUNTED_TABLES: [&str; 6] = [
    "users",
    "preference_overrides",
    "integrations",
    "integration_tokens",
    "service_keys",
    "audit_log",
];
