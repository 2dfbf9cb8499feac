//! Expired rows out, in bounded batches (the `purge_expired_flows` job): OAuth states and
//! connect sessions. Each call is one short `DELETE` of at most `limit` rows, oldest
//! first, whose batch is chosen through the table's `expires_at` index: no statement holds
//! its locks for long on either engine, and what one leaves the next takes. Expiry is
//! checked again on the rows deleted, so a row changed meanwhile is judged as it is now.
//! Which cutoff is safe is the caller's to decide; both tables are only ever used before
//! their expiry (a conditional update checks it), so a cutoff in the past never takes a
//! row that could still be used.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use crate::{
    StoreError,
    entities::{connect_sessions, oauth_states},
};

/// Deletes at most `limit` OAuth states that expired before `before`; returns how many.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db expired.oauth_states", skip_all)]
pub async fn oauth_states<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, StoreError> {
    delete_batch::<oauth_states::Entity, _>(
        conn,
        oauth_states::Column::StateHash,
        oauth_states::Column::ExpiresAt,
        before,
        limit,
    )
    .await
}

/// Deletes at most `limit` connect sessions that expired before `before`; returns how
/// many.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db expired.connect_sessions", skip_all)]
pub async fn connect_sessions<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, StoreError> {
    delete_batch::<connect_sessions::Entity, _>(
        conn,
        connect_sessions::Column::SessionHash,
        connect_sessions::Column::ExpiresAt,
        before,
        limit,
    )
    .await
}

/// `DELETE FROM t WHERE key IN (SELECT key FROM t WHERE expires < $1 ORDER BY expires
/// LIMIT $2) AND expires < $1`: both engines accept a `LIMIT` there (a `DELETE … LIMIT`
/// is not standard), and the outer check is what Postgres re-evaluates on a row that a
/// concurrent transaction updated.
async fn delete_batch<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    key: E::Column,
    expires: E::Column,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, StoreError> {
    let batch = E::find()
        .select_only()
        .column(key)
        .filter(expires.lt(before))
        .order_by_asc(expires)
        .limit(limit)
        .into_query();
    Ok(E::delete_many()
        .filter(key.in_subquery(batch))
        .filter(expires.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}
