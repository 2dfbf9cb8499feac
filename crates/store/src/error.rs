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
}
