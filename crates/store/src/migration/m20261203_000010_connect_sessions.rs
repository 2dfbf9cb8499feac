//! Hosted connect page (docs/connect-page.md): a front end asks for a short-lived,
//! single-use session, the user's browser opens `/connect/{provider}?session=…` with it.
//!
//! Only the SHA-256 of the session secret is stored (a database copy cannot open a page),
//! with the user, provider and scopes it was made for, its expiry and when it was used.
//! `flow_state_hash` is the OAuth state the page started (the hash that `oauth_states`
//! holds): the callback finds its user through it, so only a flow this page started can
//! complete on the page's redirect URI.
//!
//! Expand only (ADR 0007): a new table, which the previous release never reads.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000010_connect_sessions"
    }
}

#[derive(DeriveIden)]
enum ConnectSessions {
    Table,
    SessionHash,
    UserId,
    Provider,
    /// JSON array; NULL: the provider's default scopes.
    Scopes,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    FlowStateHash,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ConnectSessions::Table)
                .col(string(ConnectSessions::SessionHash).primary_key())
                .col(uuid(ConnectSessions::UserId))
                .col(string(ConnectSessions::Provider))
                .col(json_binary_null(ConnectSessions::Scopes))
                .col(timestamp_with_time_zone(ConnectSessions::CreatedAt))
                .col(timestamp_with_time_zone(ConnectSessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(ConnectSessions::UsedAt))
                .col(string_null(ConnectSessions::FlowStateHash))
                .foreign_key(
                    ForeignKey::create()
                        .from(ConnectSessions::Table, ConnectSessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            (
                "idx_connect_sessions_expires_at",
                ConnectSessions::ExpiresAt,
            ),
            (
                "idx_connect_sessions_flow_state",
                ConnectSessions::FlowStateHash,
            ),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(ConnectSessions::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ConnectSessions::Table).to_owned())
            .await
    }
}
