//! Lookups on a unique key without the `LIMIT ?` that sea-orm's `.one()` adds.
//!
//! SQLite (3.4x and later) lets a bound `LIMIT` value steer the query plan, so it marks such
//! a statement to be re-prepared whenever that parameter is bound again: with `.one()` every
//! execution of a cached statement re-parses and re-plans its SQL. Profiling the token
//! hand-out showed that re-preparation as the largest single cost (about a fifth of all CPU
//! under load). A key that matches at most one row needs no LIMIT at all, so hot lookups use
//! [`unique`] instead; the statement then stays prepared.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Select};

/// The row a unique-key query matches, if any. Only for queries whose filter names a
/// unique key: a second row would be silently ignored.
///
/// # Errors
/// When the database fails.
pub(crate) async fn unique<E: EntityTrait, C: ConnectionTrait>(
    q: Select<E>,
    conn: &C,
) -> Result<Option<E::Model>, DbErr> {
    Ok(q.all(conn).await?.into_iter().next())
}
