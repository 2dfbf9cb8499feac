//! The `integrations` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub status: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub scopes: Json,
    pub connected_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub last_refreshed_at: Option<DateTimeUtc>,
    pub last_refresh_attempt_at: Option<DateTimeUtc>,
    pub last_checked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub refresh_failures: i32,
    pub refresh_lease_until: Option<DateTimeUtc>,
    pub refresh_not_before: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
