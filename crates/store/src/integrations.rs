//! Integrations (a user's connection to one provider) and the single-use OAuth `state`
//! rows of the connect flow. Every function takes the user it is scoped to.

use chrono::{DateTime, Utc};
use domain::integration::IntegrationStatus;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{integration_tokens, integrations, oauth_states},
    status::{col, read},
};

pub use domain::integration::Integration;
use domain::{IntegrationId, UserId, integration::Account};

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
            default: false,
        })
    }
}

/// Rows to records (see the `TryFrom` above).
pub(crate) fn records(rows: Vec<integrations::Model>) -> Result<Vec<Integration>, StoreError> {
    rows.into_iter().map(Integration::try_from).collect()
}

/// A stored OAuth `state` (the PKCE verifier inside is a vault ciphertext).
pub type OAuthState = oauth_states::Model;

/// The integration of `user_id` with `provider` that `account` addresses, with
/// `default` set.
///
/// # Errors
/// When the database fails.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    provider: &str,
    account: &Account,
) -> Result<Option<Integration>, StoreError> {
    let rows = of_provider(conn, user_id, provider).await?;
    Ok(rows.into_iter().find(|i| match account {
        Account::Default => i.default,
        Account::Named(a) => i.account_id.as_deref() == Some(a.as_str()),
        Account::Row(id) => i.id == *id,
    }))
}

/// Every integration of `user_id` with `provider` (a user has a handful at most), the
/// default account marked: the oldest that is not disconnected, else the oldest.
async fn of_provider<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    provider: &str,
) -> Result<Vec<Integration>, StoreError> {
    let mut rows = records(
        integrations::Entity::find()
            .filter(integrations::Column::UserId.eq(user_id.as_uuid()))
            .filter(integrations::Column::Provider.eq(provider))
            .all(conn)
            .await?,
    )?;
    mark_defaults(&mut rows);
    Ok(rows)
}

/// Orders by provider, default first then the others by age, and marks each provider's
/// default. A disconnected account sorts after the connected ones, so it is the default
/// only while no other account of that provider is connected (the answer a user with a
/// single, disconnected account always had).
fn mark_defaults(rows: &mut [Integration]) {
    rows.sort_by(|a, b| {
        let key = |i: &Integration| {
            (
                i.status == IntegrationStatus::Disconnected,
                i.created_at,
                i.id.as_uuid(),
            )
        };
        a.provider
            .cmp(&b.provider)
            .then_with(|| key(a).cmp(&key(b)))
    });
    let mut last: Option<&str> = None;
    for i in rows.iter_mut() {
        i.default = last != Some(i.provider.as_str());
        last = Some(i.provider.as_str());
    }
}

/// Every integration of `user_id`, by provider, each provider's default account first.
///
/// # Errors
/// When the database fails.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<Vec<Integration>, StoreError> {
    let mut rows = records(
        integrations::Entity::find()
            .filter(integrations::Column::UserId.eq(user_id.as_uuid()))
            .order_by_asc(integrations::Column::Provider)
            .all(conn)
            .await?,
    )?;
    mark_defaults(&mut rows);
    Ok(rows)
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

/// Marks the user's integration with the provider's account `active`, creating it on the
/// first connection of that account (a reconnection of the same account keeps its id and
/// `created_at`, so its place as default or not). A different account is a row of its
/// own. A provider that names no account has one row per user, as before accounts were
/// told apart.
///
/// # Errors
/// When the database fails.
pub async fn upsert_connected<C: ConnectionTrait>(
    conn: &C,
    c: Connected,
) -> Result<Integration, StoreError> {
    use integrations::Column as C;
    // What a reconnection overwrites; the id, `created_at` and the lease stay.
    let reconnected = [
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
    ];
    let (user_id, provider, account_id) = (c.user_id, c.provider.clone(), c.account_id.clone());
    let row = connected_row(c);
    if account_id.is_some() {
        integrations::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([C::UserId, C::Provider, C::AccountId])
                    .update_columns(reconnected)
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    } else {
        // NULLs never conflict in a unique index: the account-less row is found by hand
        // (the caller holds the user's row lock, as for every connection).
        let mut update = integrations::Entity::update_many();
        for column in reconnected {
            if let Some(value) = row.get(column).into_value() {
                update = update.col_expr(column, Expr::value(value));
            }
        }
        let res = update
            .filter(C::UserId.eq(user_id.as_uuid()))
            .filter(C::Provider.eq(provider.as_str()))
            .filter(C::AccountId.is_null())
            .exec(conn)
            .await?;
        if res.rows_affected == 0 {
            integrations::Entity::insert(row)
                .exec_without_returning(conn)
                .await?;
        }
    }
    of_provider(conn, user_id, &provider)
        .await?
        .into_iter()
        .find(|i| i.account_id == account_id)
        .ok_or(StoreError::Conflict(
            "integration vanished while being connected",
        ))
}

/// The row a first connection inserts.
fn connected_row(c: Connected) -> integrations::ActiveModel {
    integrations::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(c.user_id.into()),
        provider: Set(c.provider),
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
    }
}

/// Marks the integration `account` addresses `disconnected` and deletes its token
/// ciphertexts; the user's other accounts with the provider are left as they are.
/// Returns the row as it was before, `None` when there is no such integration.
///
/// # Errors
/// When the database fails.
pub async fn disconnect<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    provider: &str,
    account: &Account,
    at: DateTime<Utc>,
) -> Result<Option<Integration>, StoreError> {
    let Some(before) = find(conn, user_id, provider, account).await? else {
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
