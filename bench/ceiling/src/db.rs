//! The ceiling's two queries, the same SQL on SQLite and Postgres (`$n` parameters are
//! understood by both), on a plain sqlx pool of the product's database.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{
    PgPool, Row as _, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};
use uuid::Uuid;

/// The product's default pool size (`DATABASE_MAX_CONNECTIONS`).
const MAX_CONNECTIONS: u32 = 16;

const USER: &str = "SELECT id, clerk_user_id, email, first_name, last_name, profile_image_url, \
     onboarding_completed, created_at, updated_at \
     FROM users WHERE clerk_user_id = $1 AND deleted_at IS NULL";

const TOKEN: &str = "SELECT i.user_id, i.expires_at, i.scopes, i.account_email, t.ciphertext \
     FROM integrations i \
     JOIN users u ON u.id = i.user_id \
     LEFT JOIN integration_tokens t \
       ON t.integration_id = i.id AND t.user_id = i.user_id AND t.kind = 'access' \
     WHERE u.deleted_at IS NULL AND i.provider = $2 AND u.clerk_user_id = $1";

const KEYS: &str = "SELECT key_hash FROM service_keys WHERE revoked_at IS NULL";

pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Serialize)]
pub struct User {
    id: Uuid,
    clerk_user_id: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    profile_image_url: Option<String>,
    onboarding_completed: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub struct TokenRow {
    pub user_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: serde_json::Value,
    pub account_email: Option<String>,
    pub ciphertext: Option<Vec<u8>>,
}

/// Runs `$body` with `$pool` bound to whichever pool this is (the row types differ).
macro_rules! on_pool {
    ($self:ident, $pool:ident => $body:expr) => {
        match $self {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

impl Pool {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?.read_only(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .connect_with(opts)
                .await?;
            return Ok(Self::Sqlite(pool));
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(url)
            .await?;
        Ok(Self::Postgres(pool))
    }

    pub async fn service_key_hashes(&self) -> sqlx::Result<Vec<String>> {
        on_pool!(self, p => sqlx::query_scalar(KEYS).fetch_all(p).await)
    }

    pub async fn user(&self, clerk_user_id: &str) -> sqlx::Result<Option<User>> {
        on_pool!(self, p => {
            let Some(r) = sqlx::query(USER).bind(clerk_user_id).fetch_optional(p).await? else {
                return Ok(None);
            };
            Ok(Some(User {
                id: r.try_get(0)?,
                clerk_user_id: r.try_get(1)?,
                email: r.try_get(2)?,
                first_name: r.try_get(3)?,
                last_name: r.try_get(4)?,
                profile_image_url: r.try_get(5)?,
                onboarding_completed: r.try_get(6)?,
                created_at: r.try_get(7)?,
                updated_at: r.try_get(8)?,
            }))
        })
    }

    pub async fn token(
        &self,
        clerk_user_id: &str,
        provider: &str,
    ) -> sqlx::Result<Option<TokenRow>> {
        on_pool!(self, p => {
            let q = sqlx::query(TOKEN).bind(clerk_user_id).bind(provider);
            let Some(r) = q.fetch_optional(p).await? else {
                return Ok(None);
            };
            Ok(Some(TokenRow {
                user_id: r.try_get(0)?,
                expires_at: r.try_get(1)?,
                scopes: r.try_get(2)?,
                account_email: r.try_get(3)?,
                ciphertext: r.try_get(4)?,
            }))
        })
    }
}
