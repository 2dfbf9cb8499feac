//! Bulk loading, for the seeding tool (`bench/seed`): on Postgres, users, their integrations
//! and tokens, and audit entries written with `COPY … FROM STDIN` (CSV) in one transaction,
//! an order of magnitude faster than multi-row inserts at a million users. The audit
//! entries are chained exactly as [`crate::audit::append`] chains them (the chain head is
//! locked for the transaction), so `user-service audit verify` passes on the result.
//!
//! The CSV is rendered from the entities' own columns and values, so a column added to an
//! entity is loaded without touching this file.

use std::fmt::Write as _;

use sea_orm::{EntityTrait, IdenStatic as _, Iterable as _, ModelTrait, Value};

use crate::{
    Db, StoreError,
    audit::{NewAuditEntry, chain},
    entities::{audit_log, integration_tokens, integrations, users},
};

/// What one [`copy_batch`] writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub users: Vec<users::Model>,
    pub integrations: Vec<integrations::Model>,
    pub tokens: Vec<integration_tokens::Model>,
    /// Chained onto the audit log in this order.
    pub audit: Vec<NewAuditEntry>,
}

/// Writes `batch` with `COPY` in one transaction on a Postgres [`Db`]. `hash` is the
/// service's entry hash (as for [`crate::audit::append`]).
///
/// # Errors
/// `InvalidUrl` when `db` is not Postgres; a database error (nothing is written then).
pub async fn copy_batch(
    db: &Db,
    batch: Batch,
    hash: impl Fn(i64, &str, &NewAuditEntry) -> String,
) -> Result<(), StoreError> {
    if db.backend() != crate::Backend::Postgres {
        return Err(StoreError::InvalidUrl(
            "COPY needs a Postgres database".to_owned(),
        ));
    }
    let mut tx = db.writer().get_postgres_connection_pool().begin().await?;
    let head: (i64, String) =
        sqlx::query_as("SELECT last_id, last_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let (audit, (last_id, last_hash)) = chain(head, batch.audit, hash);
    copy::<users::Entity>(&mut tx, &batch.users).await?;
    copy::<integrations::Entity>(&mut tx, &batch.integrations).await?;
    copy::<integration_tokens::Entity>(&mut tx, &batch.tokens).await?;
    copy::<audit_log::Entity>(&mut tx, &audit).await?;
    sqlx::query("UPDATE audit_chain_head SET last_id = $1, last_hash = $2 WHERE id = 1")
        .bind(last_id)
        .bind(last_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn copy<E: EntityTrait>(
    conn: &mut sqlx::PgConnection,
    rows: &[E::Model],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let (columns, data) = csv::<E>(rows)?;
    let table = E::default().table_name().to_owned();
    let mut sink = conn
        .copy_in_raw(&format!(
            "COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await?;
    sink.send(data.into_bytes()).await?;
    sink.finish().await?;
    Ok(())
}

/// The column list and the CSV rows of `rows`, in the entity's column order.
///
/// # Errors
/// A value of a type no entity uses (a bug here, not bad data).
pub fn csv<E: EntityTrait>(rows: &[E::Model]) -> Result<(String, String), StoreError> {
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let names = columns
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::new();
    for row in rows {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, row.get(*c))?;
        }
        out.push('\n');
    }
    Ok((names, out))
}

/// One CSV field as Postgres' `COPY … (FORMAT csv)` reads it: NULL is an unquoted empty
/// field, every text is quoted (so an empty string stays one), bytes in `bytea`'s hex form,
/// and timestamps cut to the microseconds Postgres keeps (truncated as a bound value is,
/// never rounded: an audit entry's hash covers its time).
fn field(out: &mut String, value: Value) -> Result<(), StoreError> {
    match value {
        Value::Bool(Some(b)) => out.push(if b { 't' } else { 'f' }),
        Value::Int(Some(n)) => push(out, n),
        Value::BigInt(Some(n)) => push(out, n),
        Value::Uuid(Some(u)) => push(out, u),
        Value::String(Some(s)) => quoted(out, &s),
        Value::Json(Some(j)) => quoted(out, &j.to_string()),
        Value::ChronoDateTimeUtc(Some(t)) => {
            push(out, t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        }
        Value::Bytes(Some(b)) => {
            out.push_str("\\x");
            for byte in b {
                push(out, format_args!("{byte:02x}"));
            }
        }
        v if v == v.as_null() => {}
        v => {
            return Err(StoreError::Database(sea_orm::DbErr::Type(format!(
                "bulk load: no CSV form for {v:?}"
            ))));
        }
    }
    Ok(())
}

fn push(out: &mut String, v: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

fn quoted(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(&s.replace('"', "\"\""));
    out.push('"');
}
