//! The storage side of refreshing: the per-integration lease that makes a refresh single
//! flight across replicas, the outcome of each attempt, and the counts the stats route
//! reports. Every function takes the user it is scoped to, except the fleet-wide counts.

use chrono::{DateTime, Utc};
use domain::{IntegrationId, UserId, integration::IntegrationStatus};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{audit_log, integrations},
    status::{col, read},
};

/// The one integration row, scoped to its user.
fn the(user_id: UserId, integration_id: IntegrationId) -> Condition {
    Condition::all()
        .add(integrations::Column::Id.eq(integration_id.as_uuid()))
        .add(integrations::Column::UserId.eq(user_id.as_uuid()))
}

/// Takes the refresh lease of the integration until `until`, if nobody holds a live one.
/// Exactly one of any number of concurrent callers (in any process) gets `true`.
///
/// # Errors
/// When the database fails.
pub async fn take_lease<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    integration_id: IntegrationId,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = integrations::Entity::update_many()
        .col_expr(integrations::Column::RefreshLeaseUntil, Expr::value(until))
        .filter(the(user_id, integration_id))
        .filter(
            integrations::Column::RefreshLeaseUntil
                .is_null()
                .or(integrations::Column::RefreshLeaseUntil.lt(now)),
        )
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Gives the lease back without recording an attempt (the token was fresh after all, or
/// the refresh failed before it could record anything). Only the lease taken until
/// `until` is released: a late release by a holder whose lease expired never frees the
/// lease someone else took since.
///
/// # Errors
/// When the database fails.
pub async fn release_lease<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    integration_id: IntegrationId,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    integrations::Entity::update_many()
        .col_expr(
            integrations::Column::RefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(the(user_id, integration_id))
        .filter(integrations::Column::RefreshLeaseUntil.eq(until))
        .exec(conn)
        .await?;
    Ok(())
}

/// Statuses of an integration that still holds tokens: the only ones a refresh's outcome
/// may be written to. A disconnection (or the user's deletion) that landed while the
/// provider answered wins: its row is left as it is.
const CONNECTED: [IntegrationStatus; 2] =
    [IntegrationStatus::Active, IntegrationStatus::RefreshFailed];

/// The column values of [`CONNECTED`].
fn connected() -> [&'static str; 2] {
    CONNECTED.map(col)
}

/// A successful refresh: `active`, the new expiry (and scopes, when the provider said),
/// failures and any `Retry-After` wait cleared, lease released. Only while the
/// integration is still connected: `false` (nothing written) once it was disconnected.
///
/// # Errors
/// When the database fails.
pub async fn record_success<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    integration_id: IntegrationId,
    expires_at: Option<DateTime<Utc>>,
    scopes: Option<&[String]>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut q = integrations::Entity::update_many()
        .col_expr(
            integrations::Column::Status,
            Expr::value(col(IntegrationStatus::Active)),
        )
        .col_expr(integrations::Column::ExpiresAt, Expr::value(expires_at))
        .col_expr(integrations::Column::LastRefreshedAt, Expr::value(at))
        .col_expr(integrations::Column::LastRefreshAttemptAt, Expr::value(at))
        .col_expr(integrations::Column::RefreshFailures, Expr::value(0))
        .col_expr(
            integrations::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            integrations::Column::RefreshNotBefore,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            integrations::Column::RefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(integrations::Column::UpdatedAt, Expr::value(at));
    if let Some(s) = scopes {
        q = q.col_expr(
            integrations::Column::Scopes,
            Expr::value(serde_json::json!(s)),
        );
    }
    let res = q
        .filter(the(user_id, integration_id))
        .filter(integrations::Column::Status.is_in(connected()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// A failed refresh: the new status (`refresh_failed` or `reauth_required`), the error,
/// one more failure, no new attempt before `not_before` (the provider's `Retry-After`),
/// lease released. Only while the integration is still connected: `false` (nothing
/// written) once it was disconnected.
///
/// # Errors
/// When the database fails.
pub async fn record_failure<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    integration_id: IntegrationId,
    status: IntegrationStatus,
    error: &str,
    at: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let res = integrations::Entity::update_many()
        .col_expr(
            integrations::Column::RefreshNotBefore,
            Expr::value(not_before),
        )
        .col_expr(integrations::Column::Status, Expr::value(col(status)))
        .col_expr(integrations::Column::LastRefreshAttemptAt, Expr::value(at))
        .col_expr(
            integrations::Column::RefreshFailures,
            Expr::col(integrations::Column::RefreshFailures).add(1),
        )
        .col_expr(integrations::Column::LastError, Expr::value(error))
        .col_expr(
            integrations::Column::RefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(integrations::Column::UpdatedAt, Expr::value(at))
        .filter(the(user_id, integration_id))
        .filter(integrations::Column::Status.is_in(connected()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Integrations by provider and status, over all users.
///
/// # Errors
/// When the database fails.
pub async fn count_by_provider_status<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<(String, IntegrationStatus, i64)>, StoreError> {
    // A status no version of the service writes is not counted (bounded labels); the
    // record reads of that row report it.
    Ok(stored_provider_status_counts(conn)
        .await?
        .into_iter()
        .filter_map(|(provider, status, n)| Some((provider, read(&status).ok()?, n)))
        .collect())
}

/// Integrations by provider and status as stored (the status unparsed), over all users:
/// the one grouping query behind the stats route and the daily usage counts.
///
/// # Errors
/// When the database fails.
pub(crate) async fn stored_provider_status_counts<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        provider: String,
        status: String,
        n: i64,
    }
    let rows = integrations::Entity::find()
        .select_only()
        .column(integrations::Column::Provider)
        .column(integrations::Column::Status)
        .column_as(integrations::Column::Id.count(), "n")
        .group_by(integrations::Column::Provider)
        .group_by(integrations::Column::Status)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.provider, r.status, r.n))
        .collect())
}

/// Refresh attempts since `from` by outcome (`success`, `failure`), from the audit log.
///
/// # Errors
/// When the database fails.
pub async fn refresh_outcomes_since<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        outcome: String,
        n: i64,
    }
    let rows = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Outcome)
        .column_as(audit_log::Column::Id.count(), "n")
        .filter(audit_log::Column::Action.eq("token.refreshed"))
        .filter(audit_log::Column::OccurredAt.gte(from))
        .group_by(audit_log::Column::Outcome)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.outcome, r.n)).collect())
}

/// One integration on a work list: each of a user's accounts with a provider is its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub user: UserId,
    pub provider: String,
    pub integration: IntegrationId,
}

/// Integrations holding tokens that expire before `before`, soonest first: the refresh
/// sweep's work list.
///
/// # Errors
/// When the database fails.
pub async fn expiring_before<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Due>, StoreError> {
    let expires = integrations::Column::ExpiresAt;
    let due = expires.is_not_null().and(expires.lt(before));
    work_list(conn, &due, expires, limit).await
}

/// Integrations holding tokens not checked since `before` (never-checked first): the
/// health check's work list.
///
/// The never-checked and the overdue are two ranges of the index: as one condition,
/// `last_checked_at IS NULL OR last_checked_at < ?` is no range, and SQLite answered it
/// by reading every connected integration (1.3 s over 1M, `seed --measure`).
///
/// # Errors
/// When the database fails.
pub async fn unchecked_since<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Due>, StoreError> {
    let checked = integrations::Column::LastCheckedAt;
    let mut due = work_list(conn, &checked.is_null(), checked, limit).await?;
    let left = limit.saturating_sub(due.len() as u64);
    if left > 0 {
        due.extend(work_list(conn, &checked.lt(before), checked, left).await?);
    }
    Ok(due)
}

/// The first `limit` integrations that hold tokens (`active` or
/// `refresh_failed`) and match `condition`, by `order` then id (a batch limit cuts the
/// same place on both engines; `condition` leaves one kind of NULL at most).
///
/// One statement per status, each read in the order of its `(status, order, id)` index
/// and stopped at `limit`, merged here: with `status IN (…)` the engines read every match
/// and sorted it (1.7 s when all of 1M integrations were due).
async fn work_list<C: ConnectionTrait>(
    conn: &C,
    condition: &sea_orm::sea_query::SimpleExpr,
    order: integrations::Column,
    limit: u64,
) -> Result<Vec<Due>, StoreError> {
    use sea_orm::QueryOrder;
    type Row = (Option<DateTime<Utc>>, Uuid, Uuid, String);
    let mut rows: Vec<Row> = Vec::new();
    for status in CONNECTED {
        rows.extend(
            integrations::Entity::find()
                .select_only()
                .column(order)
                .column(integrations::Column::Id)
                .column(integrations::Column::UserId)
                .column(integrations::Column::Provider)
                .filter(integrations::Column::Status.eq(col(status)))
                .filter(condition.clone())
                .order_by_asc(order)
                .order_by_asc(integrations::Column::Id)
                .limit(limit)
                .into_tuple::<Row>()
                .all(conn)
                .await?,
        );
    }
    rows.sort_by_key(|r| (r.0, r.1));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows
        .into_iter()
        .map(|(_, id, user, p)| Due {
            user: UserId::from_uuid(user),
            provider: p,
            integration: IntegrationId::from_uuid(id),
        })
        .collect())
}

/// Records a health check of the integration at `at`.
///
/// # Errors
/// When the database fails.
pub async fn mark_checked<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    integration_id: IntegrationId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    integrations::Entity::update_many()
        .col_expr(integrations::Column::LastCheckedAt, Expr::value(at))
        .filter(the(user_id, integration_id))
        .exec(conn)
        .await?;
    Ok(())
}
