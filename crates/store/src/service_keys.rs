//! Service keys: the hashes, names and permissions of back-end callers' keys. The keys
//! themselves are never stored; lookups go by the hex SHA-256 of a presented key.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{service_key_revocations as epoch, service_keys},
    unique::unique,
};

/// The id of the one row of `service_key_revocations`.
const EPOCH_ROW: i32 = 1;

/// A stored key (hash included: callers must not print it).
pub type ServiceKeyRow = service_keys::Model;

/// A key to insert.
#[derive(Clone, Debug)]
pub struct NewServiceKey {
    pub id: Uuid,
    pub name: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    /// The first characters of the key, to recognise it in listings.
    pub key_prefix: String,
    /// Permission wire names.
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Provider names the key is limited to; `None`: every provider.
    pub providers: Option<Vec<String>>,
    /// The scope ceiling; `None`: none.
    pub scope_ceiling: Option<Vec<String>>,
    /// When the key stops verifying; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A rotation: the new secret's hash and prefix, and until when the current one (which
/// becomes the previous one) still verifies.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub id: Uuid,
    /// The hash the key has now (the rotation applies only if it still has it).
    pub current_hash: String,
    pub new_hash: String,
    pub new_prefix: String,
    pub previous_valid_until: DateTime<Utc>,
}

/// Inserts a key.
///
/// # Errors
/// [`StoreError::Conflict`] when the name (or hash) is taken; other database failures.
#[tracing::instrument(name = "db service_keys.create", skip_all)]
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    key: NewServiceKey,
) -> Result<ServiceKeyRow, StoreError> {
    let row = service_keys::ActiveModel {
        id: Set(key.id),
        name: Set(key.name),
        key_hash: Set(key.key_hash),
        key_prefix: Set(key.key_prefix),
        permissions: Set(serde_json::Value::from(key.permissions)),
        created_at: Set(key.created_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        providers: Set(key.providers.map(serde_json::Value::from)),
        scope_ceiling: Set(key.scope_ceiling.map(serde_json::Value::from)),
        expires_at: Set(key.expires_at),
        previous_key_hash: Set(None),
        previous_valid_until: Set(None),
    };
    match service_keys::Entity::insert(row).exec(conn).await {
        Ok(_) => {}
        Err(e) => {
            let e = StoreError::Database(e);
            return Err(if e.is_unique_violation() {
                StoreError::Conflict("a service key with this name exists")
            } else {
                e
            });
        }
    }
    service_keys::Entity::find_by_id(key.id)
        .one(conn)
        .await?
        .ok_or(StoreError::Conflict("service key vanished after insert"))
}

/// The key whose current or previous secret has this hash, unless it is revoked. Whether
/// it is expired, or its previous secret past its grace, is the caller's to judge.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.find_active_by_hash", skip_all)]
pub async fn find_active_by_hash<C: ConnectionTrait>(
    conn: &C,
    key_hash: &str,
) -> Result<Option<ServiceKeyRow>, StoreError> {
    use sea_orm::{QueryTrait, sea_query::UnionType};
    // One statement, two unique-index probes: as `key_hash = $1 OR previous_key_hash =
    // $1`, Postgres chose to scan the whole table (the plan test).
    let by = |column: service_keys::Column| {
        service_keys::Entity::find()
            .filter(column.eq(key_hash))
            .filter(service_keys::Column::RevokedAt.is_null())
            .into_query()
    };
    let mut q = by(service_keys::Column::KeyHash);
    q.union(UnionType::All, by(service_keys::Column::PreviousKeyHash));
    let stmt = conn.get_database_backend().build(&q);
    Ok(service_keys::Entity::find()
        .from_raw_sql(stmt)
        .one(conn)
        .await?)
}

/// The key with this name (revoked or not).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.find_by_name", skip_all)]
pub async fn find_by_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
) -> Result<Option<ServiceKeyRow>, StoreError> {
    Ok(service_keys::Entity::find()
        .filter(service_keys::Column::Name.eq(name))
        .one(conn)
        .await?)
}

/// Every key, oldest first.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.list", skip_all)]
pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<ServiceKeyRow>, StoreError> {
    Ok(service_keys::Entity::find()
        .order_by_asc(service_keys::Column::CreatedAt)
        .order_by_asc(service_keys::Column::Name)
        .all(conn)
        .await?)
}

/// Marks the named key revoked at `at` and moves the revocation epoch (call it inside a
/// transaction: both change together or not at all). Returns the key as it was
/// before (so the caller can tell "unknown" from "already revoked" and drop cached copies).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.revoke_by_name", skip_all)]
pub async fn revoke_by_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    at: DateTime<Utc>,
) -> Result<Option<ServiceKeyRow>, StoreError> {
    let Some(row) = find_by_name(conn, name).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_none() {
        service_keys::Entity::update_many()
            .col_expr(service_keys::Column::RevokedAt, Expr::value(at))
            .filter(service_keys::Column::Id.eq(row.id))
            .filter(service_keys::Column::RevokedAt.is_null())
            .exec(conn)
            .await?;
        bump_revocation_epoch(conn).await?;
    }
    Ok(Some(row))
}

/// Gives the key a new secret: the current hash becomes the previous one, valid until
/// `previous_valid_until` (a secret rotated out earlier stops verifying now), and the
/// revocation epoch moves, since cached copies of the old secret must learn its new end.
/// Call it inside a transaction. Applies only while the key is live and still has
/// `current_hash`, so two racing rotations cannot both win; returns whether it applied.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.rotate", skip_all)]
pub async fn rotate<C: ConnectionTrait>(conn: &C, r: Rotation) -> Result<bool, StoreError> {
    let res = service_keys::Entity::update_many()
        .col_expr(service_keys::Column::KeyHash, Expr::value(r.new_hash))
        .col_expr(service_keys::Column::KeyPrefix, Expr::value(r.new_prefix))
        .col_expr(
            service_keys::Column::PreviousKeyHash,
            Expr::value(r.current_hash.clone()),
        )
        .col_expr(
            service_keys::Column::PreviousValidUntil,
            Expr::value(r.previous_valid_until),
        )
        .filter(service_keys::Column::Id.eq(r.id))
        .filter(service_keys::Column::KeyHash.eq(r.current_hash))
        .filter(service_keys::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(false);
    }
    bump_revocation_epoch(conn).await?;
    Ok(true)
}

/// The revocation epoch: a counter that moves whenever a key stops being valid. Processes
/// that cache verified keys compare it with the value their cache was filled under.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.revocation_epoch", skip_all)]
pub async fn revocation_epoch<C: ConnectionTrait>(conn: &C) -> Result<i64, StoreError> {
    let q = epoch::Entity::find().filter(epoch::Column::Id.eq(EPOCH_ROW));
    Ok(unique(q, conn).await?.map_or(0, |r| r.epoch))
}

/// Moves the revocation epoch by one; in the transaction that makes a key invalid, so no
/// process can see the key gone without also seeing the epoch move.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.bump_revocation_epoch", skip_all)]
pub async fn bump_revocation_epoch<C: ConnectionTrait>(conn: &C) -> Result<(), StoreError> {
    epoch::Entity::update_many()
        .col_expr(
            epoch::Column::Epoch,
            Expr::col(epoch::Column::Epoch).add(1i64),
        )
        .filter(epoch::Column::Id.eq(EPOCH_ROW))
        .exec(conn)
        .await?;
    Ok(())
}

/// Sets `last_used_at = now` unless it was set within `min_interval` already, so a busy key
/// costs at most one write per interval. Returns whether a row was written.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db service_keys.touch", skip_all)]
pub async fn touch<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: DateTime<Utc>,
    min_interval: chrono::Duration,
) -> Result<bool, StoreError> {
    let threshold = now - min_interval;
    let res = service_keys::Entity::update_many()
        .col_expr(service_keys::Column::LastUsedAt, Expr::value(now))
        .filter(service_keys::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(service_keys::Column::LastUsedAt.is_null())
                .add(service_keys::Column::LastUsedAt.lt(threshold)),
        )
        .exec(conn)
        .await?;
    Ok(res.rows_affected > 0)
}
