//! Integrations (a user's connection to one provider) and the single-use OAuth `state`
//! rows of the connect flow. Every function takes the user it is scoped to.

use chrono::{DateTime, Utc};
use domain::integration::IntegrationStatus;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{integration_tokens, integrations, oauth_states},
    status::{col, read},
    unique::unique,
};

pub use domain::integration::Integration;
use domain::{IntegrationId, UserId};

/// The one place an integration row becomes the domain record; a status no version of
/// the service writes is a storage error.
impl TryFrom<integrations::Model> for Integration {
    type Error = StoreError;

    fn try_from(r: integrations::Model) -> Result<Self, StoreError> {
        let status = read(&r.status)?;
        Ok(Self {
            id: IntegrationId::from_uuid(r.id),
            user_id: UserId::from_uuid(r.user_id),
            provider: r.provider,
            status,
            account_id: r.account_id,
            account_email: r.account_email,
            scopes: r.scopes,
            connected_at: r.connected_at,
            expires_at: r.expires_at,
            last_refreshed_at: r.last_refreshed_at,
            last_refresh_attempt_at: r.last_refresh_attempt_at,
            last_checked_at: r.last_checked_at,
            last_used_at: r.last_used_at,
            last_error: r.last_error,
            refresh_failures: r.refresh_failures,
            refresh_lease_until: r.refresh_lease_until,
            refresh_not_before: r.refresh_not_before,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Rows to records (see the `TryFrom` above).
pub(crate) fn records(rows: Vec<integrations::Model>) -> Result<Vec<Integration>, StoreError> {
    rows.into_iter().map(Integration::try_from).collect()
}

/// A stored OAuth `state` (the PKCE verifier inside is a vault ciphertext).
pub type OAuthState = oauth_states::Model;

/// The integration of `user_id` with `provider`.
///
/// # Errors
/// When the database fails.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    provider: &str,
) -> Result<Option<Integration>, StoreError> {
    let q = integrations::Entity::find()
        .filter(integrations::Column::UserId.eq(user_id.as_uuid()))
        .filter(integrations::Column::Provider.eq(provider));
    unique(q, conn)
        .await?
        .map(Integration::try_from)
        .transpose()
}

/// Every integration of `user_id`, by provider.
///
/// # Errors
/// When the database fails.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<Vec<Integration>, StoreError> {
    records(
        integrations::Entity::find()
            .filter(integrations::Column::UserId.eq(user_id.as_uuid()))
            .order_by_asc(integrations::Column::Provider)
            .all(conn)
            .await?,
    )
}

/// What a completed connection records about the account.
#[derive(Clone, Debug)]
pub struct Connected {
    pub user_id: UserId,
    pub provider: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Marks the user's integration with the provider `active` with this account, creating it
/// on the first connection (a reconnection keeps its id and `created_at`).
///
/// # Errors
/// When the database fails.
pub async fn upsert_connected<C: ConnectionTrait>(
    conn: &C,
    c: Connected,
) -> Result<Integration, StoreError> {
    let row = integrations::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(c.user_id.into()),
        provider: Set(c.provider.clone()),
        status: Set(col(IntegrationStatus::Active).to_owned()),
        account_id: Set(c.account_id),
        account_email: Set(c.account_email),
        scopes: Set(serde_json::json!(c.scopes)),
        connected_at: Set(Some(c.at)),
        expires_at: Set(c.expires_at),
        last_refreshed_at: Set(None),
        last_refresh_attempt_at: Set(None),
        last_checked_at: Set(Some(c.at)),
        last_used_at: Set(None),
        last_error: Set(None),
        refresh_failures: Set(0),
        refresh_lease_until: Set(None),
        refresh_not_before: Set(None),
        created_at: Set(c.at),
        updated_at: Set(c.at),
    };
    use integrations::Column as C;
    integrations::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::UserId, C::Provider])
                .update_columns([
                    C::Status,
                    C::AccountId,
                    C::AccountEmail,
                    C::Scopes,
                    C::ConnectedAt,
                    C::ExpiresAt,
                    C::LastRefreshedAt,
                    C::LastRefreshAttemptAt,
                    C::LastCheckedAt,
                    C::LastError,
                    C::RefreshFailures,
                    C::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    find(conn, c.user_id, &c.provider)
        .await?
        .ok_or(StoreError::Conflict(
            "integration vanished while being connected",
        ))
}

/// Marks the integration `disconnected` and deletes its token ciphertexts. Returns the
/// row as it was before, `None` when the user never connected the provider.
///
/// # Errors
/// When the database fails.
pub async fn disconnect<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    provider: &str,
    at: DateTime<Utc>,
) -> Result<Option<Integration>, StoreError> {
    let Some(before) = find(conn, user_id, provider).await? else {
        return Ok(None);
    };
    // The row first: its lock orders this after (or before) a refresh writing new tokens,
    // so the delete below also removes whatever such a refresh committed.
    integrations::Entity::update_many()
        .col_expr(
            integrations::Column::Status,
            Expr::value(col(IntegrationStatus::Disconnected)),
        )
        .col_expr(
            integrations::Column::ExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(integrations::Column::UpdatedAt, Expr::value(at))
        .filter(integrations::Column::UserId.eq(user_id.as_uuid()))
        .filter(integrations::Column::Id.eq(before.id.as_uuid()))
        .exec(conn)
        .await?;
    integration_tokens::Entity::delete_many()
        .filter(integration_tokens::Column::UserId.eq(user_id.as_uuid()))
        .filter(integration_tokens::Column::IntegrationId.eq(before.id.as_uuid()))
        .exec(conn)
        .await?;
    Ok(Some(before))
}

/// A new OAuth `state`.
#[derive(Clone, Debug)]
pub struct NewState {
    /// SHA-256 of the state (the state itself is never stored).
    pub state_hash: String,
    pub user_id: Uuid,
    pub provider: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// The sealed PKCE verifier and its key version.
    pub key_version: i32,
    pub pkce_verifier: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new `state`.
///
/// # Errors
/// When the database fails.
pub async fn insert_state<C: ConnectionTrait>(conn: &C, s: NewState) -> Result<(), StoreError> {
    oauth_states::Entity::insert(oauth_states::ActiveModel {
        state_hash: Set(s.state_hash),
        user_id: Set(s.user_id),
        provider: Set(s.provider),
        redirect_uri: Set(s.redirect_uri),
        scopes: Set(serde_json::json!(s.scopes)),
        key_version: Set(s.key_version),
        pkce_verifier: Set(s.pkce_verifier),
        created_at: Set(s.created_at),
        expires_at: Set(s.expires_at),
        used_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Uses up the state: succeeds once, for its own user and provider, before it expires.
/// A reused, expired or foreign state is `None` (and a foreign one stays usable by its
/// owner). The conditional update makes two concurrent uses yield exactly one winner.
///
/// # Errors
/// When the database fails.
pub async fn consume_state<C: ConnectionTrait>(
    conn: &C,
    state_hash: &str,
    user_id: UserId,
    provider: &str,
    now: DateTime<Utc>,
) -> Result<Option<OAuthState>, StoreError> {
    let res = oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::UsedAt, Expr::value(now))
        .filter(oauth_states::Column::StateHash.eq(state_hash))
        .filter(oauth_states::Column::UserId.eq(user_id.as_uuid()))
        .filter(oauth_states::Column::Provider.eq(provider))
        .filter(oauth_states::Column::UsedAt.is_null())
        .filter(oauth_states::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    Ok(oauth_states::Entity::find_by_id(state_hash.to_owned())
        .filter(oauth_states::Column::UserId.eq(user_id.as_uuid()))
        .one(conn)
        .await?)
}

/// Deletes states that expired before `before` (housekeeping).
///
/// # Errors
/// When the database fails.
pub async fn delete_expired_states<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::ExpiresAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}
