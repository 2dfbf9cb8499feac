//! Tokens: the hand-out of a valid access token (here and `handout`), its refresh under
//! a lease (`refresh`, `lease`), sealed storage of the tokens (`sealed`), the
//! diagnostics of an integration (`diagnostics`) and its health probe (`health`), and the
//! stats and gauges of the token service (`stats`).
//!
//! The token service (API.md "Internal service API", refresh rules): hand out a valid
//! access token for a user's provider, refreshing it first when it expires too soon.
//!
//! Single flight: in this process one task per integration refreshes while the others
//! wait on its lock and then re-read what it stored; across replicas a lease on the
//! integration row (one conditional UPDATE) lets exactly one process call the provider,
//! and the others poll until it is released. No transaction or pooled connection is held
//! during the provider call. The winner re-reads the stored token after taking the lease
//! (`refresh`); the lease is a guard released on every path (`lease`).
//! Every read here goes to the primary (`Db::current`), never a lagging replica.

pub mod diagnostics;
pub mod handout;
pub mod health;
mod lease;
mod refresh;
mod sealed;
pub mod stats;

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use domain::{
    UserId,
    audit::AuditAction,
    integration::{Account, IntegrationStatus},
};
use secrecy::SecretString;
use serde_json::json;
use store::integrations::{self as repo, Integration};
use vault::TokenKind;

use crate::{
    App, AppError, Ctx,
    audit::{self, AuditRecord},
    tokens::lease::Leased,
};

/// How long a refresher may hold the lease (longer than the provider timeout).
pub(crate) const LEASE_SECONDS: i64 = 30;
/// How often a waiter in another process looks at the lease again.
const LEASE_POLL: StdDuration = StdDuration::from_millis(50);

/// In-process refresh locks, one per integration, dropped when idle.
pub(crate) type RefreshLocks = moka::sync::Cache<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>;

pub(crate) fn refresh_locks() -> RefreshLocks {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_idle(StdDuration::from_secs(300))
        .build()
}

/// What a caller asks for.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub user: UserId,
    pub provider: String,
    /// Which of the user's accounts with the provider (the default when none is named).
    pub account: Account,
    /// Scopes the token must carry.
    pub scopes: Vec<String>,
    /// Refresh first when the token expires within this.
    pub min_validity: Duration,
    /// Refresh now whatever the expiry (`POST /internal/tokens/refresh`, the manual route).
    pub force: bool,
}

impl TokenRequest {
    /// A refresh now of that account's token whatever its expiry, asking no scopes (the
    /// manual refresh, the health check's repair; the sweep sets its own horizon).
    #[must_use]
    pub fn forced(user: UserId, provider: &str, account: Account) -> Self {
        Self {
            user,
            provider: provider.to_owned(),
            account,
            scopes: Vec::new(),
            min_validity: Duration::zero(),
            force: true,
        }
    }
}

/// A token handed out. `Debug` never shows it.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub token_type: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub provider: String,
    /// The integration row and the provider's account the token belongs to.
    pub integration_id: domain::IntegrationId,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    /// Whether this call refreshed it.
    pub refreshed: bool,
}

impl App {
    pub(crate) async fn valid_token(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let integration = self
            .connected(req.user, &req.provider, &req.account)
            .await?;
        self.valid_token_of(ctx, req, integration, None).await
    }

    /// [`Self::valid_token`] for an integration already read and found usable, with its
    /// access-token ciphertext when that read brought it along.
    pub(crate) async fn valid_token_of(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        integration: Integration,
        access: Option<Vec<u8>>,
    ) -> Result<IssuedToken, AppError> {
        let granted = scopes_of(&integration);
        let missing: Vec<String> = req
            .scopes
            .iter()
            .filter(|s| !granted.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(AppError::InsufficientScope(missing));
        }
        if !req.force && is_fresh(&integration, req.min_validity) {
            // The read that found the integration brought its token: no second read.
            if let Some(sealed) = access {
                let token = self.open_token(req.user, &integration, TokenKind::Access, &sealed)?;
                return Ok(issued(token, &integration, false));
            }
            return self.issue(req.user, &integration, false).await;
        }
        self.refresh_single_flight(ctx, req, integration).await
    }

    /// The integration, which must hold tokens; `reauth_required` is its own error. Read
    /// from the primary: it decides a hand-out, and the lease's re-read must see the token
    /// the last refresh stored (a replica's stale refresh token would be sent to a provider
    /// that already rotated it).
    pub(crate) async fn connected(
        &self,
        user: UserId,
        provider: &str,
        account: &Account,
    ) -> Result<Integration, AppError> {
        let integration = repo::find(self.db().current(), user, provider, account)
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        usable(integration, provider)
    }

    /// [`Self::connected`] for the row a refresh already found: the re-reads of a refresh
    /// stay on that account whatever happens to the others meanwhile.
    pub(crate) async fn reread(&self, integration: &Integration) -> Result<Integration, AppError> {
        let row = Account::Row(integration.id);
        self.connected(integration.user_id, &integration.provider, &row)
            .await
    }

    pub(crate) async fn issue(
        &self,
        user: UserId,
        integration: &Integration,
        refreshed: bool,
    ) -> Result<IssuedToken, AppError> {
        let token = self
            .read_token(self.db().current(), user, integration, TokenKind::Access)
            .await?
            .ok_or_else(|| {
                AppError::Internal("an active integration has no access token".to_owned())
            })?;
        Ok(issued(token, integration, refreshed))
    }

    async fn refresh_single_flight(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        integration: Integration,
    ) -> Result<IssuedToken, AppError> {
        let lock = self.refresh_locks.get_with(integration.id.into(), || {
            Arc::new(tokio::sync::Mutex::new(()))
        });
        let _guard = lock.lock().await;
        let user = req.user;
        let current = self.reread(&integration).await?;
        // Someone refreshed while we waited: their token is ours.
        if refreshed_since(&current, &integration) && is_fresh(&current, req.min_validity) {
            return self.issue(user, &current, false).await;
        }
        let lease = match self.take_or_wait(req, &integration, current).await? {
            Leased::Taken(lease) => lease,
            Leased::RefreshedElsewhere(current) => return self.issue(user, &current, false).await,
        };
        // Released on every path: here once the body ends, whatever it returned; by the
        // guard's drop when the request is cancelled or panics mid-way.
        let result = self.refresh_leased(ctx, req, &integration).await;
        lease.release().await;
        result
    }

    /// Takes the integration's lease, or waits while another replica holds it and hands
    /// out what that replica stored.
    async fn take_or_wait(
        &self,
        req: &TokenRequest,
        before: &Integration,
        mut current: Integration,
    ) -> Result<Leased, AppError> {
        let started = Utc::now();
        loop {
            if let Some(lease) = self.take_lease(req.user, current.id).await? {
                return Ok(Leased::Taken(lease));
            }
            tokio::time::sleep(LEASE_POLL).await;
            current = self.reread(before).await?;
            if refreshed_since(&current, before) && is_fresh(&current, req.min_validity) {
                return Ok(Leased::RefreshedElsewhere(Box::new(current)));
            }
            if Utc::now() - started > Duration::seconds(LEASE_SECONDS + 5) {
                return Err(AppError::Provider(format!(
                    "{}: another refresh did not finish in time",
                    req.provider
                )));
            }
        }
    }

    /// The current token while it has not expired (the provider is down, not the token);
    /// 502 once it has.
    pub(crate) async fn still_valid_or(
        &self,
        user: UserId,
        integration: &Integration,
        why: &str,
    ) -> Result<IssuedToken, AppError> {
        if integration.expires_at.is_none_or(|t| t > Utc::now()) {
            return self.issue(user, integration, false).await;
        }
        Err(AppError::Provider(format!(
            "{}: the token has expired and cannot be refreshed now ({why})",
            integration.provider
        )))
    }
}

/// Records a status transition: its audit entry and its `integration.status_changed`
/// event, in the caller's transaction.
pub(crate) async fn status_changed<C: store::Conn>(
    app: &App,
    conn: &C,
    ctx: &Ctx,
    user: UserId,
    integration: &Integration,
    to: IntegrationStatus,
    error: Option<&str>,
) -> Result<(), AppError> {
    app.emit(
        conn,
        crate::events::Event::integration_status_changed(
            integration,
            integration.status.as_str(),
            to.as_str(),
            error,
        ),
    )
    .await?;
    audit::record(
        conn,
        ctx,
        AuditRecord::new(AuditAction::IntegrationStatusChanged, Some(user))
            .resource("integration", integration.provider.clone())
            .details(with_account(
                json!({"provider": integration.provider, "from": integration.status,
                "to": to.as_str(), "error": error}),
                integration,
            )),
    )
    .await?;
    Ok(())
}

/// The integration when it holds tokens; `reauth_required` is its own error.
pub(crate) fn usable(integration: Integration, provider: &str) -> Result<Integration, AppError> {
    match integration.status {
        s if s.holds_tokens() => Ok(integration),
        IntegrationStatus::ReauthRequired => Err(AppError::ReauthorizationRequired(format!(
            "the user must reconnect {provider}"
        ))),
        _ => Err(AppError::NotFound("integration")),
    }
}

pub(crate) fn issued(
    token: SecretString,
    integration: &Integration,
    refreshed: bool,
) -> IssuedToken {
    IssuedToken {
        access_token: token,
        token_type: "Bearer",
        expires_at: integration.expires_at,
        scopes: scopes_of(integration),
        provider: integration.provider.clone(),
        integration_id: integration.id,
        account_id: integration.account_id.clone(),
        account_email: integration.account_email.clone(),
        refreshed,
    }
}

/// An audit entry's `details` with the integration row and the provider's account it is
/// about: with several accounts per provider, the provider alone no longer says which.
pub(crate) fn with_account(mut details: serde_json::Value, i: &Integration) -> serde_json::Value {
    details["integration_id"] = json!(i.id);
    details["account_id"] = json!(i.account_id);
    details
}

/// Notes in an access entry's `details` which account it is about: the token's when one
/// was found, else the account asked for, if one was named.
pub(crate) fn note_account(
    details: &mut serde_json::Value,
    asked: &Account,
    found: Option<(domain::IntegrationId, Option<&str>)>,
) {
    match (found, asked) {
        (Some((id, account)), _) => {
            details["integration_id"] = json!(id);
            details["account_id"] = json!(account);
        }
        (None, Account::Named(a)) => details["account_id"] = json!(a),
        (None, _) => {}
    }
}

pub(crate) fn scopes_of(i: &Integration) -> Vec<String> {
    serde_json::from_value(i.scopes.clone()).unwrap_or_default()
}

/// Valid for at least `min_validity` (a token without an expiry is taken as valid).
pub(crate) fn is_fresh(i: &Integration, min_validity: Duration) -> bool {
    i.expires_at.is_none_or(|t| t > Utc::now() + min_validity)
}

/// Whether `now` was refreshed after `before` was read.
pub(crate) fn refreshed_since(now: &Integration, before: &Integration) -> bool {
    now.last_refreshed_at != before.last_refreshed_at || now.expires_at != before.expires_at
}
