//! The `audit_archive_anchor` table: one row, the last entry moved out of the database by
//! the archive job (id 0 and the genesis hash while nothing was archived). The first entry
//! left in `audit_log` must chain onto it, so deleting the oldest entries is detected.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_archive_anchor")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The id of the last archived entry.
    pub last_id: i64,
    /// Its hash.
    pub last_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
