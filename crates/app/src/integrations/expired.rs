//! Expired flows out of the database (the `purge_expired_flows` job): pending OAuth
//! authorizations (`oauth_states`) and the connect page's sessions (`connect_sessions`)
//! whose expiry lies further back than a grace period. Neither is usable once expired
//! (both are taken by a conditional update that checks the expiry), so deleting them
//! changes no answer: a callback with a deleted state is refused exactly as one with an
//! expired state. The grace keeps the rows of a just-expired flow for inspection, and
//! keeps a replica whose clock runs ahead from deleting a state another still accepts.
//!
//! A connect session outlives its own expiry in one way: the callback of the flow it
//! started finds its user through it (`connect_sessions.flow_state_hash`), and that flow's
//! state may have been made just before the session expired (using a session up checks
//! its expiry), to live [`STATE_TTL`] from then. So sessions are deleted only once they
//! expired a further [`STATE_TTL`] before the cutoff: by then any state they led to has
//! expired too (about a grace ago), and its callback is refused for that state whether
//! or not the session is still there.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::{StoreError, expired};

use super::flow::STATE_TTL;
use crate::{App, AppError};

/// What one purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowPurge {
    /// States expired before this were deleted; sessions expired [`STATE_TTL`] earlier.
    pub expired_before: DateTime<Utc>,
    pub states_deleted: u64,
    pub sessions_deleted: u64,
    /// Statements run, over both tables.
    pub batches: u64,
    /// False when a table still had rows to delete after its `max_batches` (the next run
    /// goes on).
    pub complete: bool,
}

impl App {
    /// Deletes the states that expired before `before` and the connect sessions that
    /// expired [`STATE_TTL`] before it (see the module), at most `batch_size` rows per
    /// statement and `max_batches` statements per table. Each statement commits on its
    /// own, so no lock is held across batches and an interrupted purge leaves nothing
    /// half done.
    ///
    /// # Errors
    /// When the database fails; batches committed before stay committed.
    #[tracing::instrument(name = "app integrations.purge_expired_flows", skip_all)]
    pub async fn purge_expired_flows(
        &self,
        before: DateTime<Utc>,
        batch_size: u64,
        max_batches: u64,
    ) -> Result<FlowPurge, AppError> {
        let w = self.db().writer();
        let (batch_size, max_batches) = (batch_size.max(1), max_batches.max(1));
        let states = in_batches(batch_size, max_batches, |n| {
            expired::oauth_states(w, before, n)
        })
        .await?;
        crate::metrics::expired_rows_deleted("oauth_states", states.deleted);
        let sessions = in_batches(batch_size, max_batches, |n| {
            expired::connect_sessions(w, before - STATE_TTL, n)
        })
        .await?;
        crate::metrics::expired_rows_deleted("connect_sessions", sessions.deleted);
        let purge = FlowPurge {
            expired_before: before,
            states_deleted: states.deleted,
            sessions_deleted: sessions.deleted,
            batches: states.batches + sessions.batches,
            complete: states.complete && sessions.complete,
        };
        tracing::info!(
            states_deleted = purge.states_deleted,
            sessions_deleted = purge.sessions_deleted,
            batches = purge.batches,
            complete = purge.complete,
            "expired flows purged"
        );
        Ok(purge)
    }
}

/// What the batches over one table did.
struct Batches {
    deleted: u64,
    batches: u64,
    complete: bool,
}

/// Runs `delete(batch_size)` until a batch comes back short (nothing is left) or
/// `max_batches` ran.
async fn in_batches<F, Fut>(
    batch_size: u64,
    max_batches: u64,
    mut delete: F,
) -> Result<Batches, StoreError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut deleted = 0;
    for batches in 1..=max_batches {
        let n = delete(batch_size).await?;
        deleted += n;
        if n < batch_size {
            return Ok(Batches {
                deleted,
                batches,
                complete: true,
            });
        }
    }
    Ok(Batches {
        deleted,
        batches: max_batches,
        complete: false,
    })
}
