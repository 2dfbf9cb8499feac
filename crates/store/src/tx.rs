//! The unit of work: a transaction on the primary, opened by [`Db::begin`]. Use cases write
//! through it and commit it; dropped uncommitted, it rolls back. With [`Conn`], the bound of
//! code that runs on either a pool or a unit of work, `app` names no type of the ORM.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};

use crate::{Db, StoreError};

/// Where statements run: a pool of [`Db`] (`writer`, `reader`, `current`) or a [`Tx`].
pub trait Conn: ConnectionTrait {}

impl<T: ConnectionTrait> Conn for T {}

/// A transaction on the primary.
#[derive(Debug)]
pub struct Tx(DatabaseTransaction);

impl Db {
    /// Opens a unit of work on the primary.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx(self.writer().begin().await?))
    }
}

impl Tx {
    /// Makes every write of the unit of work durable, at once.
    ///
    /// # Errors
    /// When the database refuses or does not answer (nothing is kept then).
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }

    /// Gives every write of the unit of work up now (dropping it does the same, later).
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.0.rollback().await?)
    }
}

// Delegation, so every repository function takes a `&Tx` as it takes a pool.
#[async_trait::async_trait]
impl ConnectionTrait for Tx {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.0.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.0.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.0.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.0.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.0.is_mock_connection()
    }
}
