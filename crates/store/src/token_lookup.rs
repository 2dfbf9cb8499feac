//! The read behind every token hand-out (`POST /internal/tokens/get`): the live user, their
//! integration with a provider and one stored token ciphertext, in ONE statement. Three
//! separate lookups cost three round trips to the pool (on SQLite, three hand-offs to a
//! connection's worker thread) on the busiest route; one statement also reads the
//! integration and its token from the same snapshot.
//!
//! The statement is written out rather than built with sea-query: under load, building it
//! per request and decoding the joined row by prefixed column names cost about as much
//! CPU as running it. `$n` parameters are understood by both SQLite and Postgres, there is
//! no `LIMIT ?` (see `unique.rs`), and columns are read by position in [`COLUMNS`] order.

use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use uuid::Uuid;

use crate::{StoreError, entities::integrations, integrations::Integration};

/// How a caller names a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserBy<'a> {
    /// The service id.
    Id(Uuid),
    /// The Clerk user id.
    Clerk(&'a str),
}

/// The integration's columns in the order [`integration_at`] reads them, then the token's.
macro_rules! select_from {
    () => {
        "SELECT i.id, i.user_id, i.provider, i.status, i.account_id, i.account_email, \
         i.scopes, i.connected_at, i.expires_at, i.last_refreshed_at, \
         i.last_refresh_attempt_at, i.last_checked_at, i.last_used_at, i.last_error, \
         i.refresh_failures, i.refresh_lease_until, i.refresh_not_before, i.created_at, \
         i.updated_at, t.key_version, t.ciphertext \
         FROM integrations i \
         JOIN users u ON u.id = i.user_id \
         LEFT JOIN integration_tokens t \
           ON t.integration_id = i.id AND t.user_id = i.user_id AND t.kind = $3 \
         WHERE u.deleted_at IS NULL AND i.provider = $2 AND "
    };
}

/// The default account first (`store::integrations::find`'s order): the oldest that is not
/// disconnected.
macro_rules! default_first {
    () => {
        " ORDER BY CASE WHEN i.status = 'disconnected' THEN 1 ELSE 0 END, i.created_at, i.id"
    };
}

/// One statement per way of naming the user and the account. `(user, provider,
/// account_id)` and `(integration, kind)` are unique, so a named account matches one row
/// at most; without one, the first row is the default account.
const BY_ID: &str = concat!(select_from!(), "u.id = $1", default_first!());
const BY_CLERK: &str = concat!(select_from!(), "u.clerk_user_id = $1", default_first!());
const BY_ID_ACCOUNT: &str = concat!(select_from!(), "u.id = $1 AND i.account_id = $4");
const BY_CLERK_ACCOUNT: &str =
    concat!(select_from!(), "u.clerk_user_id = $1 AND i.account_id = $4");
/// How many integration columns lead the row.
const COLUMNS: usize = 19;

/// A live user's integration with `provider` (the account named by `account_id`, else
/// the default account) and its stored token of `kind` (key version, ciphertext), when
/// there is one. The integration's `default` is not set (one row is read). `None` when the user is unknown or deleted or has no
/// such integration: callers that must tell those apart look again with the narrow lookups.
///
/// # Errors
/// When the database fails.
// No span of its own (as `integrations::find`): on the busiest route a span per request
// cost more CPU than the statement's own parsing of the row.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    user: UserBy<'_>,
    provider: &str,
    account_id: Option<&str>,
    kind: &str,
) -> Result<Option<(Integration, Option<(i32, Vec<u8>)>)>, StoreError> {
    let (sql, who) = match (user, account_id) {
        (UserBy::Id(id), None) => (BY_ID, Value::from(id)),
        (UserBy::Clerk(c), None) => (BY_CLERK, Value::from(c)),
        (UserBy::Id(id), Some(_)) => (BY_ID_ACCOUNT, Value::from(id)),
        (UserBy::Clerk(c), Some(_)) => (BY_CLERK_ACCOUNT, Value::from(c)),
    };
    let mut values = vec![who, Value::from(provider), Value::from(kind)];
    values.extend(account_id.map(Value::from));
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let Some(row) = conn.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    let integration = integration_at(&row)?;
    let token = match row.try_get_by_index::<Option<i32>>(COLUMNS)? {
        Some(version) => Some((version, row.try_get_by_index(COLUMNS + 1)?)),
        None => None,
    };
    Ok(Some((integration, token)))
}

/// The integration in the first [`COLUMNS`] columns of `row`.
fn integration_at(row: &QueryResult) -> Result<Integration, StoreError> {
    Integration::try_from(integrations::Model {
        id: row.try_get_by_index(0)?,
        user_id: row.try_get_by_index(1)?,
        provider: row.try_get_by_index(2)?,
        status: row.try_get_by_index(3)?,
        account_id: row.try_get_by_index(4)?,
        account_email: row.try_get_by_index(5)?,
        scopes: row.try_get_by_index(6)?,
        connected_at: row.try_get_by_index(7)?,
        expires_at: row.try_get_by_index(8)?,
        last_refreshed_at: row.try_get_by_index(9)?,
        last_refresh_attempt_at: row.try_get_by_index(10)?,
        last_checked_at: row.try_get_by_index(11)?,
        last_used_at: row.try_get_by_index(12)?,
        last_error: row.try_get_by_index(13)?,
        refresh_failures: row.try_get_by_index(14)?,
        refresh_lease_until: row.try_get_by_index(15)?,
        refresh_not_before: row.try_get_by_index(16)?,
        created_at: row.try_get_by_index(17)?,
        updated_at: row.try_get_by_index(18)?,
    })
}
