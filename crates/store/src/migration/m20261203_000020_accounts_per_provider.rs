//! Several accounts per provider (API.md, issue 19): a user's integrations are unique by
//! `(user_id, provider, account_id)` instead of `(user_id, provider)`, so a second account
//! with the same provider is a row of its own. The columns do not change: existing rows
//! are already one per (user, provider), so they satisfy the new index as they are, keep
//! their ids and therefore their tokens (`integration_tokens` is keyed by integration id),
//! and each is its user's default account for its provider (the only one).
//!
//! Online: no table rewrite. On Postgres the new unique index is built `CONCURRENTLY`
//! (writes go on meanwhile) before the old one is dropped `CONCURRENTLY`, so uniqueness is
//! enforced throughout; on SQLite both are short statements. A NULL `account_id` (a
//! provider without an account id; the connect flow never writes pending rows, it keeps
//! its state in `oauth_states`) never conflicts in a unique index: the store finds such a
//! row by hand before inserting (`store::integrations::upsert_connected`).
//!
//! A contract step for writes (ADR 0007): the previous release's connect statement names
//! `ON CONFLICT (user_id, provider)`, which needs the old index. See docs/upgrades.md.

use sea_orm_migration::prelude::*;

use super::concurrently;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000020_accounts_per_provider"
    }
}

const NEW: &str = "uq_integrations_user_provider_account";
const OLD: &str = "uq_integrations_user_provider";

async fn run(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    m.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let c = concurrently(m);
        run(
            m,
            &format!(
                "CREATE UNIQUE INDEX {c}IF NOT EXISTS {NEW} \
                 ON integrations (user_id, provider, account_id)"
            ),
        )
        .await?;
        run(m, &format!("DROP INDEX {c}IF EXISTS {OLD}")).await
    }

    /// Development only (ADR 0007): fails while a user has two accounts with a provider.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let c = concurrently(m);
        run(
            m,
            &format!(
                "CREATE UNIQUE INDEX {c}IF NOT EXISTS {OLD} ON integrations (user_id, provider)"
            ),
        )
        .await?;
        run(m, &format!("DROP INDEX {c}IF EXISTS {NEW}")).await
    }

    /// `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }
}
