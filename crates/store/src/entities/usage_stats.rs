//! The `usage_stats` table: daily counts computed by the usage analytics job.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_stats")]
pub struct Model {
    /// `YYYY-MM-DD` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub metric: String,
    /// E.g. `google/active` for integrations; empty when the metric has none.
    #[sea_orm(primary_key, auto_increment = false)]
    pub dimension: String,
    pub value: i64,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
