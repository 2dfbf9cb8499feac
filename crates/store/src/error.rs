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
}
