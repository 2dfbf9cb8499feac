//! When a provider answered 429 or 503 with `Retry-After`, the integration is not
//! refreshed again before this time (on demand or by the sweep).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000004_refresh_not_before"
    }
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    RefreshNotBefore,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .add_column(timestamp_with_time_zone_null(
                    Integrations::RefreshNotBefore,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .drop_column(Integrations::RefreshNotBefore)
                .to_owned(),
        )
        .await
    }
}
