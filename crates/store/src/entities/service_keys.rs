//! The `service_keys` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub key_prefix: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub permissions: Json,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// Provider names the key may get tokens for; `None`: every provider.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub providers: Option<Json>,
    /// The scopes a token handed to the key may carry; `None`: no ceiling.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub scope_ceiling: Option<Json>,
    pub expires_at: Option<DateTimeUtc>,
    /// Hex SHA-256 of the secret before the last rotation.
    pub previous_key_hash: Option<String>,
    /// When the previous secret stops verifying.
    pub previous_valid_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
