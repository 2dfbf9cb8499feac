//! The `integration_tokens` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    pub user_id: Uuid,
    pub key_version: i32,
    pub ciphertext: Vec<u8>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::integrations::Entity",
        from = "Column::IntegrationId",
        to = "super::integrations::Column::Id"
    )]
    Integration,
}

impl Related<super::integrations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Integration.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
