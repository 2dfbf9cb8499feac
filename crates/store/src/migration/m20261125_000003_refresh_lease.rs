//! The refresh lease of an integration: single flight across replicas on both engines
//! without holding a transaction (or a pooled connection) open during the provider call.
//! A refresher takes it with one conditional UPDATE; others poll until it is released
//! or lapses, then re-read the token the winner stored.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_refresh_lease"
    }
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    RefreshLeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .add_column(timestamp_with_time_zone_null(
                    Integrations::RefreshLeaseUntil,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .drop_column(Integrations::RefreshLeaseUntil)
                .to_owned(),
        )
        .await
    }
}
