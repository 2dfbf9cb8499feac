//! The refresh lease as a guard (ADR 0006): whoever takes an integration's lease holds a
//! [`Lease`], and the lease goes back on every path. The single-flight code releases it
//! (awaited) once the refresh ends, however it ended; when the request is cancelled (the
//! client went away, the future was dropped) or a panic unwinds, the guard's `Drop`
//! releases it from a task of its own. Before this, an early `?` left the lease held and
//! the next refresh of that integration waited out its 30 s and answered 502.
//!
//! The release matches on the lease's own expiry, so a holder that outlived its lease
//! never frees the lease another caller has taken since.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use domain::{IntegrationId, UserId};
use store::{Db, integrations::Integration, token_refresh};

use crate::{App, AppError, tokens::LEASE_SECONDS};

/// What waiting for the lease ended with.
pub(crate) enum Leased {
    /// This caller holds the lease and refreshes.
    Taken(Lease),
    /// Another replica refreshed meanwhile: the integration as it stored it.
    RefreshedElsewhere(Box<Integration>),
}

/// A held refresh lease; released by [`Lease::release`] or, failing that, on drop.
#[must_use = "a lease not released blocks refreshes of the integration until it expires"]
pub(crate) struct Lease {
    db: Db,
    user: UserId,
    integration: IntegrationId,
    until: DateTime<Utc>,
    held: bool,
}

impl App {
    /// Takes the integration's lease when nobody holds a live one.
    pub(crate) async fn take_lease(
        &self,
        user: UserId,
        integration: IntegrationId,
    ) -> Result<Option<Lease>, AppError> {
        let now = Utc::now();
        // Milliseconds, which both engines keep exactly: the release matches on this value.
        let until = (now + Duration::seconds(LEASE_SECONDS)).trunc_subsecs(3);
        let taken =
            token_refresh::take_lease(self.db().writer(), user, integration, now, until).await?;
        // Built right after the statement, with no await in between: from here on every
        // way out of the caller releases it.
        Ok(taken.then(|| Lease {
            db: self.db().clone(),
            user,
            integration,
            until,
            held: true,
        }))
    }
}

impl Lease {
    /// Gives the lease back now. A failure is logged: the lease then expires by itself.
    pub(crate) async fn release(mut self) {
        self.held = false;
        release(&self.db, self.user, self.integration, self.until).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        // Cancelled or unwinding: `release` never ran. Release from a task of its own; out
        // of a runtime (never, in the service) the lease expires by itself.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, user, integration, until) =
            (self.db.clone(), self.user, self.integration, self.until);
        rt.spawn(async move { release(&db, user, integration, until).await });
    }
}

async fn release(db: &Db, user: UserId, integration: IntegrationId, until: DateTime<Utc>) {
    if let Err(e) = token_refresh::release_lease(db.writer(), user, integration, until).await {
        tracing::warn!(error = %e, "cannot release a refresh lease; it expires by itself");
    }
}
