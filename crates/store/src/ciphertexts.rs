//! Every vault ciphertext the database holds: integration tokens and the PKCE verifiers of
//! pending OAuth flows. Rotation reads rows still under an old key version and swaps each
//! one only if it is unchanged since it was read (compare-and-swap on the key version and
//! the ciphertext itself), so a rotation can be interrupted, re-run, or race a refresh
//! without losing a token.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{integration_tokens, integrations, oauth_states},
    unique::unique,
};

/// Where a ciphertext lives, with what its binding needs (user, provider, kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A row of `integration_tokens`; `kind` is `access` or `refresh`.
    Token { integration_id: Uuid, kind: String },
    /// The PKCE verifier of an `oauth_states` row.
    PkceVerifier { state_hash: String },
}

/// A ciphertext to re-encrypt.
#[derive(Clone, Debug)]
pub struct StoredCiphertext {
    pub location: Location,
    pub user_id: Uuid,
    pub provider: String,
    pub key_version: i32,
    pub ciphertext: Vec<u8>,
}

/// Rows per key version across every table that holds ciphertexts.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.count_by_version", skip_all)]
pub async fn count_by_version<C: ConnectionTrait>(
    conn: &C,
) -> Result<BTreeMap<i32, u64>, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        key_version: i32,
        n: i64,
    }
    let mut out = BTreeMap::new();
    let tokens = integration_tokens::Entity::find()
        .select_only()
        .column(integration_tokens::Column::KeyVersion)
        .column_as(integration_tokens::Column::KeyVersion.count(), "n")
        .group_by(integration_tokens::Column::KeyVersion)
        .into_model::<Row>()
        .all(conn)
        .await?;
    let states = oauth_states::Entity::find()
        .select_only()
        .column(oauth_states::Column::KeyVersion)
        .column_as(oauth_states::Column::KeyVersion.count(), "n")
        .group_by(oauth_states::Column::KeyVersion)
        .into_model::<Row>()
        .all(conn)
        .await?;
    for r in tokens.into_iter().chain(states) {
        *out.entry(r.key_version).or_insert(0) += u64::try_from(r.n).unwrap_or(0);
    }
    Ok(out)
}

/// Up to `limit` ciphertexts whose key version is not `active`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.not_on_version", skip_all)]
pub async fn not_on_version<C: ConnectionTrait>(
    conn: &C,
    active: i32,
    limit: u64,
) -> Result<Vec<StoredCiphertext>, StoreError> {
    #[derive(FromQueryResult)]
    struct TokenRow {
        integration_id: Uuid,
        kind: String,
        user_id: Uuid,
        key_version: i32,
        ciphertext: Vec<u8>,
        provider: String,
    }
    let tokens = integration_tokens::Entity::find()
        .select_only()
        .columns([
            integration_tokens::Column::IntegrationId,
            integration_tokens::Column::Kind,
            integration_tokens::Column::UserId,
            integration_tokens::Column::KeyVersion,
            integration_tokens::Column::Ciphertext,
        ])
        .column(integrations::Column::Provider)
        .join(
            JoinType::InnerJoin,
            integration_tokens::Relation::Integration.def(),
        )
        .filter(integration_tokens::Column::KeyVersion.ne(active))
        .order_by_asc(integration_tokens::Column::IntegrationId)
        .limit(limit)
        .into_model::<TokenRow>()
        .all(conn)
        .await?;
    let mut out: Vec<StoredCiphertext> = tokens
        .into_iter()
        .map(|r| StoredCiphertext {
            location: Location::Token {
                integration_id: r.integration_id,
                kind: r.kind,
            },
            user_id: r.user_id,
            provider: r.provider,
            key_version: r.key_version,
            ciphertext: r.ciphertext,
        })
        .collect();
    let room = limit.saturating_sub(out.len() as u64);
    if room > 0 {
        let states = oauth_states::Entity::find()
            .filter(oauth_states::Column::KeyVersion.ne(active))
            .order_by_asc(oauth_states::Column::StateHash)
            .limit(room)
            .all(conn)
            .await?;
        out.extend(states.into_iter().map(|s| StoredCiphertext {
            location: Location::PkceVerifier {
                state_hash: s.state_hash,
            },
            user_id: s.user_id,
            provider: s.provider,
            key_version: s.key_version,
            ciphertext: s.pkce_verifier,
        }));
    }
    Ok(out)
}

/// Replaces `old` with a new ciphertext under `new_version`, only if the row still holds
/// exactly `old`. Returns false when the row changed or vanished meanwhile (nothing lost:
/// whoever changed it wrote under the active key).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.swap", skip_all)]
pub async fn swap<C: ConnectionTrait>(
    conn: &C,
    old: &StoredCiphertext,
    new_version: i32,
    new_ciphertext: Vec<u8>,
) -> Result<bool, StoreError> {
    let res = match &old.location {
        Location::Token {
            integration_id,
            kind,
        } => {
            integration_tokens::Entity::update_many()
                .col_expr(
                    integration_tokens::Column::KeyVersion,
                    Expr::value(new_version),
                )
                .col_expr(
                    integration_tokens::Column::Ciphertext,
                    Expr::value(new_ciphertext),
                )
                .col_expr(
                    integration_tokens::Column::UpdatedAt,
                    Expr::value(Utc::now()),
                )
                .filter(integration_tokens::Column::IntegrationId.eq(*integration_id))
                .filter(integration_tokens::Column::Kind.eq(kind.as_str()))
                .filter(integration_tokens::Column::KeyVersion.eq(old.key_version))
                .filter(integration_tokens::Column::Ciphertext.eq(old.ciphertext.clone()))
                .exec(conn)
                .await?
        }
        Location::PkceVerifier { state_hash } => {
            oauth_states::Entity::update_many()
                .col_expr(oauth_states::Column::KeyVersion, Expr::value(new_version))
                .col_expr(
                    oauth_states::Column::PkceVerifier,
                    Expr::value(new_ciphertext),
                )
                .filter(oauth_states::Column::StateHash.eq(state_hash.as_str()))
                .filter(oauth_states::Column::KeyVersion.eq(old.key_version))
                .filter(oauth_states::Column::PkceVerifier.eq(old.ciphertext.clone()))
                .exec(conn)
                .await?
        }
    };
    Ok(res.rows_affected == 1)
}

/// Stores (inserts or replaces) one token ciphertext of an integration.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.put_token", skip_all)]
pub async fn put_token<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    integration_id: Uuid,
    kind: &str,
    key_version: i32,
    ciphertext: Vec<u8>,
) -> Result<(), StoreError> {
    let model = integration_tokens::ActiveModel {
        integration_id: Set(integration_id),
        kind: Set(kind.to_owned()),
        user_id: Set(user_id),
        key_version: Set(key_version),
        ciphertext: Set(ciphertext),
        updated_at: Set(Utc::now()),
    };
    integration_tokens::Entity::insert(model)
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                integration_tokens::Column::IntegrationId,
                integration_tokens::Column::Kind,
            ])
            .update_columns([
                integration_tokens::Column::KeyVersion,
                integration_tokens::Column::Ciphertext,
                integration_tokens::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One token ciphertext of a user's integration.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.get_token", skip_all)]
pub async fn get_token<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    integration_id: Uuid,
    kind: &str,
) -> Result<Option<(i32, Vec<u8>)>, StoreError> {
    let q = integration_tokens::Entity::find_by_id((integration_id, kind.to_owned()))
        .filter(integration_tokens::Column::UserId.eq(user_id));
    Ok(unique(q, conn)
        .await?
        .map(|r| (r.key_version, r.ciphertext)))
}

/// Deletes every token ciphertext of a user (deletion, disconnect).
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db ciphertexts.delete_user_tokens", skip_all)]
pub async fn delete_user_tokens<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> Result<u64, StoreError> {
    Ok(integration_tokens::Entity::delete_many()
        .filter(integration_tokens::Column::UserId.eq(user_id))
        .exec(conn)
        .await?
        .rows_affected)
}
