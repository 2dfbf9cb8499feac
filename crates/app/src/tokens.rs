//! The token service (API.md "Internal service API", refresh rules): hand out a valid
//! access token for a user's provider, refreshing it first when it expires too soon.
//!
//! Single flight: in this process one task per integration refreshes while the others
//! wait on its lock and then re-read what it stored; across replicas a lease on the
//! integration row (one conditional UPDATE) lets exactly one process call the provider,
//! and the others poll until it is released. No transaction or pooled connection is held
//! during the provider call. The winner re-reads the stored token after taking the lease.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use domain::{UserId, audit::AuditAction, integration::IntegrationStatus};
use secrecy::SecretString;
use serde_json::json;
use store::{
    TransactionTrait,
    integrations::{self as repo, Integration},
    token_refresh,
};
use vault::TokenKind;

use crate::{
    App, AppError, Ctx,
    audit::{self, AuditRecord},
    oauth::client::ProviderError,
};

/// A failing integration is refreshed at most this often on demand.
const RETRY_FLOOR_SECONDS: i64 = 30;
/// How long a refresher may hold the lease (longer than the provider timeout).
const LEASE_SECONDS: i64 = 30;
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
    /// Scopes the token must carry.
    pub scopes: Vec<String>,
    /// Refresh first when the token expires within this.
    pub min_validity: Duration,
    /// Refresh now whatever the expiry (`POST /internal/tokens/refresh`, the manual route).
    pub force: bool,
}

/// A token handed out. `Debug` never shows it.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub token_type: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub provider: String,
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
        let integration = self.connected(req.user, &req.provider).await?;
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

    /// The integration, which must hold tokens; `reauth_required` is its own error.
    async fn connected(&self, user: UserId, provider: &str) -> Result<Integration, AppError> {
        let integration = repo::find(self.db().reader(), user.as_uuid(), provider)
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        usable(integration, provider)
    }

    async fn issue(
        &self,
        user: UserId,
        integration: &Integration,
        refreshed: bool,
    ) -> Result<IssuedToken, AppError> {
        let token = self
            .read_token(self.db().reader(), user, integration, TokenKind::Access)
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
        let lock = self
            .refresh_locks
            .get_with(integration.id, || Arc::new(tokio::sync::Mutex::new(())));
        let _guard = lock.lock().await;
        let user = req.user;
        let mut current = self.connected(user, &req.provider).await?;
        // Someone refreshed while we waited: their token is ours.
        if refreshed_since(&current, &integration) && is_fresh(&current, req.min_validity) {
            return self.issue(user, &current, false).await;
        }
        let started = Utc::now();
        loop {
            let now = Utc::now();
            if token_refresh::take_lease(
                self.db().writer(),
                user.as_uuid(),
                current.id,
                now,
                now + Duration::seconds(LEASE_SECONDS),
            )
            .await?
            {
                break;
            }
            // Another replica is refreshing: wait for it, then use what it stored.
            tokio::time::sleep(LEASE_POLL).await;
            current = self.connected(user, &req.provider).await?;
            if refreshed_since(&current, &integration) && is_fresh(&current, req.min_validity) {
                return self.issue(user, &current, false).await;
            }
            if Utc::now() - started > Duration::seconds(LEASE_SECONDS + 5) {
                return Err(AppError::Provider(format!(
                    "{}: another refresh did not finish in time",
                    req.provider
                )));
            }
        }
        // The winner re-reads after taking the lease.
        let current = self.connected(user, &req.provider).await?;
        if refreshed_since(&current, &integration) && is_fresh(&current, req.min_validity) {
            token_refresh::release_lease(self.db().writer(), user.as_uuid(), current.id).await?;
            return self.issue(user, &current, false).await;
        }
        self.refresh_holding_lease(ctx, user, current).await
    }

    /// Calls the provider and records the outcome; the lease is released by every path.
    async fn refresh_holding_lease(
        &self,
        ctx: &Ctx,
        user: UserId,
        integration: Integration,
    ) -> Result<IssuedToken, AppError> {
        let provider = self
            .catalog()
            .get(&integration.provider)
            .ok_or(AppError::NotFound("provider"))?
            .clone();
        let now = Utc::now();
        let failing = integration.status == IntegrationStatus::RefreshFailed.as_str();
        // At most one attempt per 30 s while failing, and never before the provider's
        // `Retry-After`.
        let recently = integration
            .last_refresh_attempt_at
            .is_some_and(|t| now - t < Duration::seconds(RETRY_FLOOR_SECONDS))
            || integration.refresh_not_before.is_some_and(|t| now < t);
        if failing && recently {
            token_refresh::release_lease(self.db().writer(), user.as_uuid(), integration.id)
                .await?;
            return self
                .still_valid_or(
                    user,
                    &integration,
                    "the last refresh failed moments ago; retrying later",
                )
                .await;
        }
        let Some(refresh_token) = self
            .read_token(self.db().reader(), user, &integration, TokenKind::Refresh)
            .await?
        else {
            token_refresh::release_lease(self.db().writer(), user.as_uuid(), integration.id)
                .await?;
            return self
                .still_valid_or(user, &integration, "no refresh token is held")
                .await;
        };
        let answer = self.oauth_client().refresh(&provider, &refresh_token).await;
        crate::metrics::token_refresh(
            &integration.provider,
            // The outcomes the alert rules and dashboard use (deploy/prometheus/alerts.yml).
            match &answer {
                Ok(_) => "ok",
                Err(ProviderError::InvalidGrant { .. }) => "reauth_required",
                Err(_) => "error",
            },
        );
        match answer {
            Ok(tokens) => {
                let txn = self.db().writer().begin().await?;
                // A rotated refresh token is stored in the same transaction as the new
                // access token; an answer without one keeps the stored one.
                self.store_tokens(&txn, user, &integration, &tokens).await?;
                token_refresh::record_success(
                    &txn,
                    user.as_uuid(),
                    integration.id,
                    tokens.expires_at,
                    tokens.scopes.as_deref(),
                    now,
                )
                .await?;
                audit::record(
                    &txn,
                    ctx,
                    AuditRecord::new(AuditAction::TokenRefreshed, Some(user))
                        .resource("integration", integration.provider.clone())
                        .outcome("success")
                        .details(json!({"provider": integration.provider,
                            "refresh_token_rotated": tokens.refresh_token.is_some()})),
                )
                .await?;
                if failing {
                    status_changed(
                        self,
                        &txn,
                        ctx,
                        user,
                        &integration,
                        IntegrationStatus::Active,
                        None,
                    )
                    .await?;
                }
                txn.commit().await?;
                let fresh = repo::find(self.db().writer(), user.as_uuid(), &integration.provider)
                    .await?
                    .ok_or(AppError::NotFound("integration"))?;
                Ok(IssuedToken {
                    access_token: tokens.access_token,
                    token_type: "Bearer",
                    expires_at: fresh.expires_at,
                    scopes: scopes_of(&fresh),
                    provider: fresh.provider.clone(),
                    account_email: fresh.account_email.clone(),
                    refreshed: true,
                })
            }
            Err(e) => {
                let terminal = matches!(e, ProviderError::InvalidGrant { .. });
                let status = if terminal {
                    IntegrationStatus::ReauthRequired
                } else {
                    IntegrationStatus::RefreshFailed
                };
                let message = e.to_string();
                let not_before = match &e {
                    ProviderError::Transient {
                        retry_after: Some(wait),
                        ..
                    } => Duration::from_std(*wait).ok().map(|w| now + w),
                    _ => None,
                };
                let txn = self.db().writer().begin().await?;
                token_refresh::record_failure(
                    &txn,
                    user.as_uuid(),
                    integration.id,
                    status.as_str(),
                    &message,
                    now,
                    not_before,
                )
                .await?;
                audit::record(
                    &txn,
                    ctx,
                    AuditRecord::new(AuditAction::TokenRefreshed, Some(user))
                        .resource("integration", integration.provider.clone())
                        .outcome("failure")
                        .details(json!({"provider": integration.provider, "error": message})),
                )
                .await?;
                if integration.status != status.as_str() {
                    status_changed(self, &txn, ctx, user, &integration, status, Some(&message))
                        .await?;
                }
                txn.commit().await?;
                if terminal {
                    return Err(AppError::ReauthorizationRequired(format!(
                        "{} rejected the refresh token: the user must reconnect",
                        integration.provider
                    )));
                }
                self.still_valid_or(user, &integration, &message).await
            }
        }
    }

    /// The current token while it has not expired (the provider is down, not the token);
    /// 502 once it has.
    async fn still_valid_or(
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
async fn status_changed<C: store::ConnectionTrait>(
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
            user,
            &integration.provider,
            &integration.status,
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
            .details(
                json!({"provider": integration.provider, "from": integration.status,
                "to": to.as_str(), "error": error}),
            ),
    )
    .await?;
    Ok(())
}

/// The integration when it holds tokens; `reauth_required` is its own error.
pub(crate) fn usable(integration: Integration, provider: &str) -> Result<Integration, AppError> {
    match IntegrationStatus::parse(&integration.status) {
        Some(s) if s.holds_tokens() => Ok(integration),
        Some(IntegrationStatus::ReauthRequired) => Err(AppError::ReauthorizationRequired(format!(
            "the user must reconnect {provider}"
        ))),
        _ => Err(AppError::NotFound("integration")),
    }
}

fn issued(token: SecretString, integration: &Integration, refreshed: bool) -> IssuedToken {
    IssuedToken {
        access_token: token,
        token_type: "Bearer",
        expires_at: integration.expires_at,
        scopes: scopes_of(integration),
        provider: integration.provider.clone(),
        account_email: integration.account_email.clone(),
        refreshed,
    }
}

fn scopes_of(i: &Integration) -> Vec<String> {
    serde_json::from_value(i.scopes.clone()).unwrap_or_default()
}

/// Valid for at least `min_validity` (a token without an expiry is taken as valid).
fn is_fresh(i: &Integration, min_validity: Duration) -> bool {
    i.expires_at.is_none_or(|t| t > Utc::now() + min_validity)
}

/// Whether `now` was refreshed after `before` was read.
fn refreshed_since(now: &Integration, before: &Integration) -> bool {
    now.last_refreshed_at != before.last_refreshed_at || now.expires_at != before.expires_at
}
