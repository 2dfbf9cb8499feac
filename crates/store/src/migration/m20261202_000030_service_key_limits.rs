//! Least-privilege service keys: a key may be limited to providers and to a scope ceiling,
//! may expire, and may be rotated with a grace period during which the previous secret
//! (its hash, never the secret) still verifies (docs/security.md "Service-key limits").
//!
//! Expand only (ADR 0007): nullable columns, NULL meaning what every existing key had (no
//! limit, no expiry, no previous secret), so existing keys and the previous release are
//! unaffected. Adding a nullable column without a default is a catalog change on both
//! engines (no table rewrite). SQLite takes one column per `ALTER TABLE`.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000030_service_key_limits"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ServiceKeys {
    Table,
    /// JSON array of provider names; NULL: every provider.
    Providers,
    /// JSON array of scopes; NULL: no ceiling.
    ScopeCeiling,
    ExpiresAt,
    /// Hex SHA-256 of the secret this key had before its last rotation.
    PreviousKeyHash,
    /// When the previous secret stops verifying.
    PreviousValidUntil,
}

fn columns() -> [ColumnDef; 5] {
    [
        json_binary_null(ServiceKeys::Providers),
        json_binary_null(ServiceKeys::ScopeCeiling),
        timestamp_with_time_zone_null(ServiceKeys::ExpiresAt),
        string_null(ServiceKeys::PreviousKeyHash),
        timestamp_with_time_zone_null(ServiceKeys::PreviousValidUntil),
    ]
}

const NAMES: [ServiceKeys; 5] = [
    ServiceKeys::Providers,
    ServiceKeys::ScopeCeiling,
    ServiceKeys::ExpiresAt,
    ServiceKeys::PreviousKeyHash,
    ServiceKeys::PreviousValidUntil,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut col in columns() {
            m.alter_table(
                Table::alter()
                    .table(ServiceKeys::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in NAMES {
            m.alter_table(
                Table::alter()
                    .table(ServiceKeys::Table)
                    .drop_column(name)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
