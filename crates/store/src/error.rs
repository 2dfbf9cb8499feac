//! The storage error: what callers need to tell apart, nothing more.

/// A storage failure. `Display` never holds SQL parameters (values may be personal data).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL in `DATABASE_URL` is not one we can use.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// A uniqueness or foreign-key rule refused the write.
    #[error("conflicting row: {0}")]
    Conflict(&'static str),
    /// The database answered with an error or did not answer.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Opening a connection pool failed.
    #[error("database connection failed: {0}")]
    Connect(#[from] sqlx::Error),
    /// Creating the folder of a SQLite file failed.
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when the error is a unique-constraint violation (a duplicate insert).
    #[must_use]
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Conflict(_) => true,
            Self::Database(e) => matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ),
            _ => false,
        }
    }

    /// The database's error code when it refused the values themselves, so the same write
    /// fails again however often it is retried: on Postgres a data exception (SQLSTATE class
    /// 22, e.g. `22P05`, a NUL in jsonb) or an integrity violation (class 23); on SQLite a
    /// constraint, too-big, type-mismatch or range error; on either a value the driver
    /// cannot encode. `None` for everything else — connection, pool, lock, disk, and
    /// duplicate keys (a chain writer re-reads its head, so a retry can pass) — which may
    /// pass on a retry and must not be taken for a bad entry.
    #[must_use]
    pub fn data_error_code(&self) -> Option<String> {
        let Self::Database(
            sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
            | sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)),
        ) = self
        else {
            return None;
        };
        let db = match &**e {
            sqlx::Error::Encode(_) => return Some("encode".to_owned()),
            sqlx::Error::Database(db) => db,
            _ => return None,
        };
        let code = db.code()?.into_owned();
        if db.is_unique_violation() {
            return None;
        }
        let refused = if db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            code.starts_with("22") || code.starts_with("23")
        } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // Extended result codes: the primary code is the low byte. TOOBIG, CONSTRAINT,
            // MISMATCH, RANGE.
            code.parse::<i32>()
                .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25))
        } else {
            false
        };
        refused.then_some(code)
    }

    /// True when the database cannot do the work right now but nothing is wrong with the
    /// request or our code: it is unreachable, the pool timed out, the connection broke, or
    /// the engine refuses writes for a while (SQLite locked, read-only or full; Postgres
    /// shutting down, out of connections, or a read-only standby). Such a failure is a 503
    /// that the caller may retry; anything else stays a 500.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => db_err_unavailable(e),
            Self::Connect(e) => sqlx_unavailable(e),
            Self::Folder { .. } => true,
            Self::InvalidUrl(_) | Self::Conflict(_) => false,
        }
    }
}

fn db_err_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        // Pool timed out or closed; or sea-orm's own "connection" failures.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => {
            sqlx_unavailable(s)
        }
        _ => false,
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            db.code().is_some_and(|c| {
                if sqlite {
                    sqlite_unavailable(&c)
                } else {
                    postgres_unavailable(&c)
                }
            })
        }
        _ => false,
    }
}

/// SQLite result codes (numeric, possibly extended: the primary code is the low byte) that
/// mean "not now" rather than "never": BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10,
/// FULL 13, CANTOPEN 14.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14))
}

/// Postgres SQLSTATEs that mean "not now": 08 connection exception, 53 insufficient
/// resources (disk full, out of memory, too many connections), 57P01-57P05 shutdown and
/// idle-session ends, 58 system errors (I/O), 25006 read-only transaction (a standby or a
/// read-only primary).
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || code == "25006"
}

#[cfg(test)]
mod tests {
    use super::{postgres_unavailable, sqlite_unavailable};

    #[test]
    fn codes_that_mean_not_now() {
        for c in ["5", "517", "6", "8", "778", "13", "14"] {
            assert!(sqlite_unavailable(c), "{c}");
        }
        for c in ["08006", "53100", "53300", "57P01", "58030", "25006"] {
            assert!(postgres_unavailable(c), "{c}");
        }
        // Constraint violations, syntax errors and serialization conflicts are not outages.
        for c in ["19", "2067", "1", "11"] {
            assert!(!sqlite_unavailable(c), "{c}");
        }
        for c in ["23505", "42601", "40001", "22P02"] {
            assert!(!postgres_unavailable(c), "{c}");
        }
    }
}
