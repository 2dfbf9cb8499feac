//! The service-key revocation epoch: one row whose counter moves with every revocation, so
//! each running process can tell with one tiny query whether its cache of verified keys is
//! still good (docs/security.md "Service-key revocation").

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_service_key_epoch"
    }
}

#[derive(DeriveIden)]
enum ServiceKeyRevocations {
    Table,
    Id,
    Epoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ServiceKeyRevocations::Table)
                .col(integer(ServiceKeyRevocations::Id).primary_key())
                .col(big_integer(ServiceKeyRevocations::Epoch).default(0))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(ServiceKeyRevocations::Table)
                .columns([ServiceKeyRevocations::Id, ServiceKeyRevocations::Epoch])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ServiceKeyRevocations::Table).to_owned())
            .await
    }
}
