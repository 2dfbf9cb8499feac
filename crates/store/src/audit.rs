//! The audit log: appends that extend the hash chain, and reads.
//!
//! Appends lock the single chain-head row (`SELECT … FOR UPDATE` on Postgres; on SQLite
//! the one writer connection serializes write transactions), so two writers can never
//! chain onto the same predecessor.

use chrono::{DateTime, Utc};
use domain::UserId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{audit_archive_anchor, audit_chain_head, audit_log},
    unique::unique,
};

/// An entry to append (id and hashes are assigned by the chain).
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub occurred_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub user_id: Option<UserId>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// Digest of the personal fields (see the `audit_log` entity); `None` hashes v1-style.
    pub pii_digest: Option<String>,
}

pub use domain::audit::AuditEntry;

/// The one place an audit row becomes the domain record.
impl From<audit_log::Model> for AuditEntry {
    fn from(r: audit_log::Model) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            user_id: r.user_id.map(UserId::from_uuid),
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            outcome: r.outcome,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
            pii_digest: r.pii_digest,
            pseudonymized_at: r.pseudonymized_at,
        }
    }
}

/// Rows to records.
fn records(rows: Vec<audit_log::Model>) -> Vec<AuditEntry> {
    rows.into_iter().map(AuditEntry::from).collect()
}

/// Appends entries in order, each chained to the one before. `hash(id, prev_hash, entry)`
/// computes an entry's hash. Call inside the transaction of the change being audited.
///
/// # Errors
/// When the database fails; nothing is appended then.
#[tracing::instrument(name = "db audit.append", skip_all)]
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    entries: Vec<NewAuditEntry>,
    hash: impl Fn(i64, &str, &NewAuditEntry) -> String,
) -> Result<Vec<i64>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let head = unique(
        audit_chain_head::Entity::find_by_id(1).lock_exclusive(),
        conn,
    )
    .await?
    .ok_or(StoreError::Conflict("audit chain head missing"))?;
    let (rows, (last_id, last_hash)) = chain((head.last_id, head.last_hash), entries, hash);
    let ids = rows.iter().map(|r| r.id).collect();
    let rows = rows.into_iter().map(|r| r.into_active_model().reset_all());
    audit_log::Entity::insert_many(rows).exec(conn).await?;
    audit_chain_head::Entity::update(audit_chain_head::ActiveModel {
        id: Set(1),
        last_id: Set(last_id),
        last_hash: Set(last_hash),
    })
    .exec(conn)
    .await?;
    Ok(ids)
}

/// Chains `entries` onto `head` (the id and hash of the newest entry): the rows to write,
/// and the new head. Shared by [`append`] and the bulk loader (`crate::bulk`).
pub(crate) fn chain(
    head: (i64, String),
    entries: Vec<NewAuditEntry>,
    hash: impl Fn(i64, &str, &NewAuditEntry) -> String,
) -> (Vec<audit_log::Model>, (i64, String)) {
    let (mut last_id, mut last_hash) = head;
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        let id = last_id + 1;
        let h = hash(id, &last_hash, &e);
        rows.push(audit_log::Model {
            id,
            occurred_at: e.occurred_at,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            action: e.action,
            user_id: e.user_id.map(Uuid::from),
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            details: e.details,
            prev_hash: last_hash,
            hash: h.clone(),
            pii_digest: e.pii_digest,
            pseudonymized_at: None,
        });
        last_id = id;
        last_hash = h;
    }
    (rows, (last_id, last_hash))
}

/// The chain head: the id and hash of the newest entry (0 and the genesis hash when empty).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.head", skip_all)]
pub async fn head<C: ConnectionTrait>(conn: &C) -> Result<(i64, String), StoreError> {
    let h = unique(audit_chain_head::Entity::find_by_id(1), conn)
        .await?
        .ok_or(StoreError::Conflict("audit chain head missing"))?;
    Ok((h.last_id, h.last_hash))
}

/// Entries with `id > after`, oldest first, at most `limit` (for walking the chain).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.after", skip_all)]
pub async fn after<C: ConnectionTrait>(
    conn: &C,
    after: i64,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(records(
        audit_log::Entity::find()
            .filter(audit_log::Column::Id.gt(after))
            .order_by_asc(audit_log::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    ))
}

/// Filters for listing entries, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<UserId>,
    pub action: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only entries with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
}

/// Entries matching `f`, newest first, at most `limit`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.list", skip_all)]
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    f: &AuditFilter,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut q = audit_log::Entity::find();
    if let Some(u) = f.user_id {
        q = q.filter(audit_log::Column::UserId.eq(u.as_uuid()));
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_log::Column::Action.eq(a.as_str()));
    }
    if let Some(a) = &f.actor_type {
        q = q.filter(audit_log::Column::ActorType.eq(a.as_str()));
    }
    if let Some(a) = &f.actor_id {
        q = q.filter(audit_log::Column::ActorId.eq(a.as_str()));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_log::Column::OccurredAt.gte(t));
    }
    if let Some(t) = f.to {
        q = q.filter(audit_log::Column::OccurredAt.lt(t));
    }
    if let Some(id) = f.before_id {
        q = q.filter(audit_log::Column::Id.lt(id));
    }
    Ok(records(
        q.order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    ))
}

/// `COUNT(*)`, not `COUNT(id)`: Postgres then answers the stats from
/// `idx_audit_log_occurred_action` alone (an index-only scan) instead of reading each
/// entry for its id (100k entries: 23 ms instead of 310).
const COUNT_ALL: &str = "COUNT(*)";

/// Counts by action over `[from, to)`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.count_by_action", skip_all)]
pub async fn count_by_action<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        action: String,
        n: i64,
    }
    let rows = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Action)
        .column_as(sea_orm::sea_query::Expr::cust(COUNT_ALL), "n")
        .filter(audit_log::Column::OccurredAt.gte(from))
        .filter(audit_log::Column::OccurredAt.lt(to))
        .group_by(audit_log::Column::Action)
        .order_by_asc(audit_log::Column::Action)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.action, r.n)).collect())
}

/// Counts by UTC day (`YYYY-MM-DD`) over `[from, to)`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.count_by_day", skip_all)]
pub async fn count_by_day<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        day: String,
        n: i64,
    }
    // The one engine-specific expression: how a timestamp becomes its UTC day.
    let day = match conn.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        _ => "substr(occurred_at, 1, 10)",
    };
    let rows = audit_log::Entity::find()
        .select_only()
        .column_as(sea_orm::sea_query::Expr::cust(day), "day")
        .column_as(sea_orm::sea_query::Expr::cust(COUNT_ALL), "n")
        .filter(audit_log::Column::OccurredAt.gte(from))
        .filter(audit_log::Column::OccurredAt.lt(to))
        .group_by(sea_orm::sea_query::Expr::cust(day))
        .order_by_asc(sea_orm::sea_query::Expr::cust(day))
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.n)).collect())
}

/// The archive anchor: id and hash of the last entry the archive moved out (0 and the
/// genesis hash while nothing was). The first entry left must chain onto it.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db audit.archive_anchor", skip_all)]
pub async fn archive_anchor<C: ConnectionTrait>(conn: &C) -> Result<(i64, String), StoreError> {
    let a = unique(audit_archive_anchor::Entity::find_by_id(1), conn)
        .await?
        .ok_or(StoreError::Conflict("audit archive anchor missing"))?;
    Ok((a.last_id, a.last_hash))
}

/// Deletes the entries with `id <= last_id` (after they were archived) and moves the
/// anchor to (`last_id`, `last_hash`), in the caller's transaction. The anchor only moves
/// from `expected` (the one the archived entries were checked against): a concurrent
/// archive run, or an anchor changed behind our back, makes this a conflict and nothing
/// is deleted once the caller rolls back.
///
/// # Errors
/// `Conflict` when the anchor is no longer `expected`; when the database fails.
#[tracing::instrument(name = "db audit.archive_through", skip_all)]
pub async fn archive_through<C: ConnectionTrait>(
    conn: &C,
    expected: (i64, &str),
    last_id: i64,
    last_hash: &str,
) -> Result<u64, StoreError> {
    let moved = audit_archive_anchor::Entity::update_many()
        .col_expr(audit_archive_anchor::Column::LastId, Expr::value(last_id))
        .col_expr(
            audit_archive_anchor::Column::LastHash,
            Expr::value(last_hash),
        )
        .filter(audit_archive_anchor::Column::Id.eq(1))
        .filter(audit_archive_anchor::Column::LastId.eq(expected.0))
        .filter(audit_archive_anchor::Column::LastHash.eq(expected.1))
        .exec(conn)
        .await?
        .rows_affected;
    if moved != 1 {
        return Err(StoreError::Conflict("audit archive anchor moved meanwhile"));
    }
    Ok(audit_log::Entity::delete_many()
        .filter(audit_log::Column::Id.lte(last_id))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Entries that carry personal data of a user: about them (`user_id`), by them
/// (`actor_id` = their Clerk id) or naming them as the resource. Entries pseudonymized
/// for another user are included: they may still name this one.
///
/// # Errors
/// When the database fails.
pub async fn personal_entries<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    clerk_user_id: &str,
) -> Result<Vec<AuditEntry>, StoreError> {
    use sea_orm::Condition;
    let uid = user_id.to_string();
    Ok(records(
        audit_log::Entity::find()
            .filter(
                Condition::any()
                    .add(audit_log::Column::UserId.eq(user_id.as_uuid()))
                    .add(audit_log::Column::ActorId.eq(clerk_user_id))
                    .add(audit_log::Column::ResourceId.is_in([uid.as_str(), clerk_user_id])),
            )
            .order_by_asc(audit_log::Column::Id)
            .all(conn)
            .await?,
    ))
}

/// The replacement personal fields of one entry.
#[derive(Clone, Debug)]
pub struct Pseudonymized {
    pub actor_id: Option<String>,
    pub user_id: Option<UserId>,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
}

/// Replaces the personal fields of entry `id` (ip and user agent are cleared). The hash,
/// `prev_hash` and `pii_digest` stay: the chain still verifies over the digest.
///
/// # Errors
/// When the database fails.
pub async fn pseudonymize<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    p: Pseudonymized,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit_log::Entity::update_many()
        .col_expr(audit_log::Column::ActorId, Expr::value(p.actor_id))
        .col_expr(
            audit_log::Column::UserId,
            Expr::value(p.user_id.map(Uuid::from)),
        )
        .col_expr(audit_log::Column::ResourceId, Expr::value(p.resource_id))
        .col_expr(audit_log::Column::Ip, Expr::value(Option::<String>::None))
        .col_expr(
            audit_log::Column::UserAgent,
            Expr::value(Option::<String>::None),
        )
        .col_expr(audit_log::Column::Details, Expr::value(p.details))
        .col_expr(audit_log::Column::PseudonymizedAt, Expr::value(Some(at)))
        .filter(audit_log::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
