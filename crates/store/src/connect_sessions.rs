//! Connect sessions of the hosted connect page (docs/connect-page.md): made by the owner,
//! used up once by the user's browser, then the key from the OAuth callback back to the
//! user. Stored by the SHA-256 of their secret only.

use chrono::{DateTime, Utc};
use domain::UserId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};

use crate::{StoreError, entities::connect_sessions};

/// A session to store.
#[derive(Clone, Debug)]
pub struct NewConnectSession {
    /// Hex SHA-256 of the secret.
    pub session_hash: String,
    pub user_id: UserId,
    pub provider: String,
    /// `None`: the provider's default scopes.
    pub scopes: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session the browser just used up: what the flow it starts is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedSession {
    pub user_id: UserId,
    pub provider: String,
    pub scopes: Option<Vec<String>>,
}

/// Why a session could not be used: each is its own page for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such session (or made for another provider).
    Unknown,
    Expired,
    /// Already used once.
    Used,
}

/// Stores a new session.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db connect_sessions.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(conn: &C, s: NewConnectSession) -> Result<(), StoreError> {
    connect_sessions::Entity::insert(connect_sessions::ActiveModel {
        session_hash: Set(s.session_hash),
        user_id: Set(s.user_id.as_uuid()),
        provider: Set(s.provider),
        scopes: Set(s.scopes.map(|v| serde_json::json!(v))),
        created_at: Set(s.created_at),
        expires_at: Set(s.expires_at),
        used_at: Set(None),
        flow_state_hash: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Uses up the session for `provider`: succeeds once, before it expires. The conditional
/// update makes two concurrent uses yield exactly one winner; a loser learns why from a
/// read after it (the reason is only for the page shown, the refusal is already decided).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db connect_sessions.consume", skip_all)]
pub async fn consume<C: ConnectionTrait>(
    conn: &C,
    session_hash: &str,
    provider: &str,
    now: DateTime<Utc>,
) -> Result<Result<OpenedSession, Refused>, StoreError> {
    let res = connect_sessions::Entity::update_many()
        .col_expr(connect_sessions::Column::UsedAt, Expr::value(now))
        .filter(connect_sessions::Column::SessionHash.eq(session_hash))
        .filter(connect_sessions::Column::Provider.eq(provider))
        .filter(connect_sessions::Column::UsedAt.is_null())
        .filter(connect_sessions::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    let row = connect_sessions::Entity::find_by_id(session_hash.to_owned())
        .filter(connect_sessions::Column::Provider.eq(provider))
        .one(conn)
        .await?;
    let Some(row) = row else {
        return Ok(Err(Refused::Unknown));
    };
    if res.rows_affected != 1 {
        // Used wins over expired: a used session's page says so even after its expiry.
        return Ok(Err(if row.used_at.is_some() {
            Refused::Used
        } else {
            Refused::Expired
        }));
    }
    Ok(Ok(OpenedSession {
        user_id: UserId::from_uuid(row.user_id),
        provider: row.provider,
        scopes: row.scopes.and_then(|v| serde_json::from_value(v).ok()),
    }))
}

/// Records the OAuth state (its hash) of the flow the used session started.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db connect_sessions.attach_flow", skip_all)]
pub async fn attach_flow<C: ConnectionTrait>(
    conn: &C,
    session_hash: &str,
    state_hash: &str,
) -> Result<(), StoreError> {
    connect_sessions::Entity::update_many()
        .col_expr(
            connect_sessions::Column::FlowStateHash,
            Expr::value(state_hash),
        )
        .filter(connect_sessions::Column::SessionHash.eq(session_hash))
        .exec(conn)
        .await?;
    Ok(())
}

/// The user whose connect-page flow for `provider` has this OAuth state (its hash);
/// `None` for a state no connect session started.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db connect_sessions.flow_owner", skip_all)]
pub async fn flow_owner<C: ConnectionTrait>(
    conn: &C,
    state_hash: &str,
    provider: &str,
) -> Result<Option<UserId>, StoreError> {
    Ok(connect_sessions::Entity::find()
        .filter(connect_sessions::Column::FlowStateHash.eq(state_hash))
        .filter(connect_sessions::Column::Provider.eq(provider))
        .one(conn)
        .await?
        .map(|r| UserId::from_uuid(r.user_id)))
}
