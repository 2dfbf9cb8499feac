//! Backups of a SQLite database: a consistent snapshot with `VACUUM INTO`, and the checks
//! that a snapshot is usable (`PRAGMA integrity_check`, row counts).

use std::path::Path;

use sqlx::{Connection, sqlite::SqliteConnectOptions};

use crate::{Backend, Db, StoreError, usage::COUNTED_TABLES};

/// Row counts per table.
pub type Counts = Vec<(&'static str, i64)>;

/// Writes a snapshot of the SQLite database to `path` (which must not exist) and returns
/// the row counts at that moment. Both run on the one writer connection, held throughout,
/// so no write can land between the counts and the snapshot.
///
/// # Errors
/// When the database is not SQLite or the snapshot cannot be written.
pub async fn sqlite_snapshot(db: &Db, path: &Path) -> Result<Counts, StoreError> {
    if db.backend() != Backend::Sqlite {
        return Err(StoreError::Conflict("VACUUM INTO needs SQLite"));
    }
    let pool = db.writer().get_sqlite_connection_pool();
    let mut conn = pool.acquire().await?;
    let counts = counts(&mut conn).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(path.display().to_string())
        .execute(&mut *conn)
        .await?;
    Ok(counts)
}

/// What checking a snapshot found; empty lists mean it is sound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// Problems `PRAGMA integrity_check` reported.
    pub integrity_errors: Vec<String>,
    /// Tables whose row count differs from the expected one.
    pub count_mismatches: Vec<String>,
}

impl SnapshotCheck {
    /// True when nothing is wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.integrity_errors.is_empty() && self.count_mismatches.is_empty()
    }
}

/// Opens the snapshot at `path` read-only, runs `PRAGMA integrity_check` and, when
/// `expected` is given, compares row counts.
///
/// # Errors
/// When the file cannot be opened or read as a database at all (also a failed check).
pub async fn check_sqlite_snapshot(
    path: &Path,
    expected: Option<&Counts>,
) -> Result<SnapshotCheck, StoreError> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let mut check = SnapshotCheck::default();
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    if rows != ["ok"] {
        check.integrity_errors = rows;
    }
    if let Some(expected) = expected
        && check.integrity_errors.is_empty()
    {
        let found = counts(&mut conn).await?;
        for ((table, want), (_, got)) in expected.iter().zip(found.iter()) {
            if want != got {
                check
                    .count_mismatches
                    .push(format!("{table}: {got} rows, expected {want}"));
            }
        }
    }
    let _ = conn.close().await;
    Ok(check)
}

async fn counts(conn: &mut sqlx::SqliteConnection) -> Result<Counts, StoreError> {
    let mut out = Vec::with_capacity(COUNTED_TABLES.len());
    for table in COUNTED_TABLES {
        // Table names come from our own constant list, never from input.
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await?;
        out.push((table, n));
    }
    Ok(out)
}
