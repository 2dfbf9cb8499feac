//! The event outbox and its deliveries. An event row and one delivery row per subscriber
//! are written in the transaction of the change that caused them; a dispatcher claims due
//! deliveries (one conditional UPDATE, so one claimer wins on any replica), sends them, and
//! records the outcome.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{UserId, event::DeliveryStatus};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{event_deliveries, event_outbox},
    status::{col, read},
};

/// An event to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: &'static str,
    pub user_id: Option<Uuid>,
    /// The `data` member of the body (never a secret).
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A due delivery with what its body is built from.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub data: serde_json::Value,
    pub event_created_at: DateTime<Utc>,
    pub subscriber_url: String,
    /// Attempts made so far.
    pub attempts: i32,
}

/// How one attempt ended.
#[derive(Clone, Debug)]
pub enum Attempt {
    /// 2xx.
    Delivered { status_code: i32 },
    /// Failed; try again at `next_at`.
    Retry {
        status_code: Option<i32>,
        error: String,
        next_at: DateTime<Utc>,
    },
    /// Failed for the last time (or the subscriber is gone).
    Failed {
        status_code: Option<i32>,
        error: String,
    },
}

/// Stores `event` and a pending delivery to each of `subscribers`, due at once. Call in the
/// transaction of the change.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    event: NewEvent,
    subscribers: &[String],
) -> Result<(), StoreError> {
    let at = event.created_at;
    event_outbox::ActiveModel {
        id: Set(event.id),
        event_type: Set(event.event_type.to_owned()),
        user_id: Set(event.user_id),
        payload: Set(event.data),
        created_at: Set(at),
    }
    .insert(conn)
    .await?;
    if subscribers.is_empty() {
        return Ok(());
    }
    let rows = subscribers.iter().map(|url| event_deliveries::ActiveModel {
        id: NotSet,
        event_id: Set(event.id),
        subscriber_url: Set(url.clone()),
        status: Set(col(DeliveryStatus::Pending).to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(at),
        last_status_code: Set(None),
        last_error: Set(None),
        delivered_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    });
    event_deliveries::Entity::insert_many(rows)
        .exec(conn)
        .await?;
    Ok(())
}

/// Up to `limit` pending deliveries due at `now`, oldest first (a delivery whose event is
/// gone is ended as failed instead).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.due", skip_all)]
pub async fn due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueDelivery>, StoreError> {
    let rows = event_deliveries::Entity::find()
        .filter(event_deliveries::Column::Status.eq(col(DeliveryStatus::Pending)))
        .filter(event_deliveries::Column::NextAttemptAt.lte(now))
        .order_by_asc(event_deliveries::Column::NextAttemptAt)
        .order_by_asc(event_deliveries::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = event_ids(&rows);
    let events: HashMap<Uuid, event_outbox::Model> = event_outbox::Entity::find()
        .filter(event_outbox::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    // A delivery whose event is gone has nothing to send. Purges and pruning remove both,
    // so this is only a safety net: ended here, it can never fill every batch.
    let orphans: Vec<i64> = rows
        .iter()
        .filter(|r| !events.contains_key(&r.event_id))
        .map(|r| r.id)
        .collect();
    if !orphans.is_empty() {
        event_deliveries::Entity::update_many()
            .col_expr(
                event_deliveries::Column::Status,
                Expr::value(col(DeliveryStatus::Failed)),
            )
            .col_expr(
                event_deliveries::Column::LastError,
                Expr::value("the event no longer exists"),
            )
            .col_expr(event_deliveries::Column::UpdatedAt, Expr::value(now))
            .filter(event_deliveries::Column::Id.is_in(orphans))
            .exec(conn)
            .await?;
    }
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let e = events.get(&r.event_id)?;
            Some(DueDelivery {
                id: r.id,
                event_id: r.event_id,
                event_type: e.event_type.clone(),
                data: e.payload.clone(),
                event_created_at: e.created_at,
                subscriber_url: r.subscriber_url,
                attempts: r.attempts,
            })
        })
        .collect())
}

/// Claims a due delivery until `lease_until` (its `next_attempt_at` moves there, so it is
/// no longer due). Exactly one of any number of concurrent claimers gets `true`; a claimer
/// that dies mid-send leaves it due again when the lease passes.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.claim", skip_all)]
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = event_deliveries::Entity::update_many()
        .col_expr(
            event_deliveries::Column::NextAttemptAt,
            Expr::value(lease_until),
        )
        .filter(event_deliveries::Column::Id.eq(id))
        .filter(event_deliveries::Column::Status.eq(col(DeliveryStatus::Pending)))
        .filter(event_deliveries::Column::NextAttemptAt.lte(now))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records one attempt of a claimed delivery.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.finish", skip_all)]
pub async fn finish<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    attempt: Attempt,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let q = event_deliveries::Entity::update_many()
        .col_expr(
            event_deliveries::Column::Attempts,
            Expr::col(event_deliveries::Column::Attempts).add(1),
        )
        .col_expr(event_deliveries::Column::UpdatedAt, Expr::value(at));
    let q = match attempt {
        Attempt::Delivered { status_code } => q
            .col_expr(
                event_deliveries::Column::Status,
                Expr::value(col(DeliveryStatus::Delivered)),
            )
            .col_expr(
                event_deliveries::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(
                event_deliveries::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(event_deliveries::Column::DeliveredAt, Expr::value(at)),
        Attempt::Retry {
            status_code,
            error,
            next_at,
        } => q
            .col_expr(
                event_deliveries::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(event_deliveries::Column::LastError, Expr::value(error))
            .col_expr(
                event_deliveries::Column::NextAttemptAt,
                Expr::value(next_at),
            ),
        Attempt::Failed { status_code, error } => q
            .col_expr(
                event_deliveries::Column::Status,
                Expr::value(col(DeliveryStatus::Failed)),
            )
            .col_expr(
                event_deliveries::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(event_deliveries::Column::LastError, Expr::value(error)),
    };
    q.filter(event_deliveries::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A delivery with the type of its event (what operators look at).
#[derive(Clone, Debug)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: Uuid,
    /// `None` when the event was purged since.
    pub event_type: Option<String>,
    pub subscriber_url: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Deliveries, newest first, optionally of one status; `before` (an id) pages.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.deliveries", skip_all)]
pub async fn deliveries<C: ConnectionTrait>(
    conn: &C,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<DeliveryView>, StoreError> {
    let mut q = event_deliveries::Entity::find();
    if let Some(s) = status {
        q = q.filter(event_deliveries::Column::Status.eq(col(s)));
    }
    if let Some(b) = before {
        q = q.filter(event_deliveries::Column::Id.lt(b));
    }
    let rows = q
        .order_by_desc(event_deliveries::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    let ids = event_ids(&rows);
    let types: HashMap<Uuid, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        event_outbox::Entity::find()
            .select_only()
            .column(event_outbox::Column::Id)
            .column(event_outbox::Column::EventType)
            .filter(event_outbox::Column::Id.is_in(ids))
            .into_tuple()
            .all(conn)
            .await?
            .into_iter()
            .collect()
    };
    rows.into_iter()
        .map(|r| {
            Ok(DeliveryView {
                status: read(&r.status)?,
                event_type: types.get(&r.event_id).cloned(),
                id: r.id,
                event_id: r.event_id,
                subscriber_url: r.subscriber_url,
                attempts: r.attempts,
                next_attempt_at: r.next_attempt_at,
                last_status_code: r.last_status_code,
                last_error: r.last_error,
                delivered_at: r.delivered_at,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// Gives a failed delivery a fresh set of attempts, due at `now`. `None` when there is no
/// such delivery, `Some(false)` when it has not failed.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.requeue", skip_all)]
pub async fn requeue<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<bool>, StoreError> {
    let res = event_deliveries::Entity::update_many()
        .col_expr(
            event_deliveries::Column::Status,
            Expr::value(col(DeliveryStatus::Pending)),
        )
        .col_expr(event_deliveries::Column::Attempts, Expr::value(0))
        .col_expr(event_deliveries::Column::NextAttemptAt, Expr::value(now))
        .col_expr(event_deliveries::Column::UpdatedAt, Expr::value(now))
        .filter(event_deliveries::Column::Id.eq(id))
        .filter(event_deliveries::Column::Status.eq(col(DeliveryStatus::Failed)))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 {
        return Ok(Some(true));
    }
    let exists = event_deliveries::Entity::find_by_id(id).one(conn).await?;
    Ok(exists.map(|_| false))
}

/// Event types stored for `user_id`, oldest first (tests and support).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.types_for_user", skip_all)]
pub async fn for_user<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<Vec<event_outbox::Model>, StoreError> {
    Ok(event_outbox::Entity::find()
        .filter(event_outbox::Column::UserId.eq(user_id.as_uuid()))
        .order_by_asc(event_outbox::Column::CreatedAt)
        .order_by_asc(event_outbox::Column::Id)
        .all(conn)
        .await?)
}

/// Removes every event about `user_id` and its deliveries (the purge of a user: event
/// data names them).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.delete_for_user", skip_all)]
pub async fn delete_for_user<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<u64, StoreError> {
    let ids: Vec<Uuid> = event_outbox::Entity::find()
        .select_only()
        .column(event_outbox::Column::Id)
        .filter(event_outbox::Column::UserId.eq(user_id.as_uuid()))
        .into_tuple()
        .all(conn)
        .await?;
    delete_events(conn, &ids).await
}

/// Removes events created before `before` that have no pending delivery left (history
/// past its use), with their deliveries.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db events.prune", skip_all)]
pub async fn prune<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let pending: Vec<Uuid> = event_deliveries::Entity::find()
        .select_only()
        .column(event_deliveries::Column::EventId)
        .filter(event_deliveries::Column::Status.eq(col(DeliveryStatus::Pending)))
        .filter(event_deliveries::Column::CreatedAt.lt(before))
        .into_tuple()
        .all(conn)
        .await?;
    let old = event_outbox::Entity::find()
        .select_only()
        .column(event_outbox::Column::Id)
        .filter(event_outbox::Column::CreatedAt.lt(before));
    let old: Vec<Uuid> = if pending.is_empty() {
        old.into_tuple().all(conn).await?
    } else {
        old.filter(event_outbox::Column::Id.is_not_in(pending))
            .into_tuple()
            .all(conn)
            .await?
    };
    delete_events(conn, &old).await
}

/// The distinct events of `rows`.
fn event_ids(rows: &[event_deliveries::Model]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Deletes events `ids` and their deliveries; returns the events removed.
async fn delete_events<C: ConnectionTrait>(conn: &C, ids: &[Uuid]) -> Result<u64, StoreError> {
    let mut removed = 0;
    // Bounded statements: a long outage or a long-lived user can leave many rows.
    for chunk in ids.chunks(500) {
        event_deliveries::Entity::delete_many()
            .filter(event_deliveries::Column::EventId.is_in(chunk.to_vec()))
            .exec(conn)
            .await?;
        removed += event_outbox::Entity::delete_many()
            .filter(event_outbox::Column::Id.is_in(chunk.to_vec()))
            .exec(conn)
            .await?
            .rows_affected;
    }
    Ok(removed)
}
