//! Where the archived part of the audit chain ends (issue 14): the id and hash of the last
//! entry the archive job moved out. Before this table, the first remaining entry's
//! `prev_hash` was taken on trust, so deleting the oldest entries went unnoticed.
//!
//! An existing database is anchored at what it holds now: at the predecessor of its oldest
//! entry, or at the chain head when every entry was archived. That is the best evidence
//! there is; from here on only the archive job moves the anchor.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_audit_archive_anchor"
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(DeriveIden)]
enum AuditArchiveAnchor {
    Table,
    Id,
    LastId,
    LastHash,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    PrevHash,
}

#[derive(DeriveIden)]
enum AuditChainHead {
    Table,
    Id,
    LastId,
    LastHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditArchiveAnchor::Table)
                .col(integer(AuditArchiveAnchor::Id).primary_key())
                .col(big_integer(AuditArchiveAnchor::LastId))
                .col(string(AuditArchiveAnchor::LastHash))
                .to_owned(),
        )
        .await?;
        let (last_id, last_hash) = current_anchor(m).await?;
        m.exec_stmt(
            Query::insert()
                .into_table(AuditArchiveAnchor::Table)
                .columns([
                    AuditArchiveAnchor::Id,
                    AuditArchiveAnchor::LastId,
                    AuditArchiveAnchor::LastHash,
                ])
                .values_panic([1.into(), last_id.into(), last_hash.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditArchiveAnchor::Table).to_owned())
            .await
    }
}

/// The predecessor of the oldest entry, or the head when the log is empty.
async fn current_anchor(m: &SchemaManager<'_>) -> Result<(i64, String), DbErr> {
    let conn = m.get_connection();
    let backend = conn.get_database_backend();
    let oldest = Query::select()
        .columns([AuditLog::Id, AuditLog::PrevHash])
        .from(AuditLog::Table)
        .order_by(AuditLog::Id, Order::Asc)
        .limit(1)
        .to_owned();
    if let Some(row) = conn.query_one_raw(backend.build(&oldest)).await? {
        let id: i64 = row.try_get("", "id")?;
        return Ok(if id <= 1 {
            (0, GENESIS.to_owned())
        } else {
            (id - 1, row.try_get("", "prev_hash")?)
        });
    }
    let head = Query::select()
        .columns([AuditChainHead::LastId, AuditChainHead::LastHash])
        .from(AuditChainHead::Table)
        .and_where(Expr::col(AuditChainHead::Id).eq(1))
        .to_owned();
    match conn.query_one_raw(backend.build(&head)).await? {
        Some(row) => Ok((row.try_get("", "last_id")?, row.try_get("", "last_hash")?)),
        None => Ok((0, GENESIS.to_owned())),
    }
}
