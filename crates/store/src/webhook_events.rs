//! Processed incoming webhook ids, so each delivery changes state at most once.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::{StoreError, entities::webhook_events};

/// True when the event `id` has been processed already.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db webhook_events.exists", skip_all)]
pub async fn exists<C: ConnectionTrait>(conn: &C, id: &str) -> Result<bool, StoreError> {
    Ok(webhook_events::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .is_some())
}

/// Records event `id` as processed. Call in the transaction of the change it caused; a
/// second insert of the same id fails with [`StoreError::is_unique_violation`] true.
///
/// # Errors
/// When the database fails or the id is recorded already.
#[tracing::instrument(name = "db webhook_events.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    source: &str,
    event_type: &str,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    webhook_events::ActiveModel {
        id: Set(id.to_owned()),
        source: Set(source.to_owned()),
        event_type: Set(event_type.to_owned()),
        outcome: Set(outcome.to_owned()),
        processed_at: Set(at),
    }
    .insert(conn)
    .await?;
    Ok(())
}
