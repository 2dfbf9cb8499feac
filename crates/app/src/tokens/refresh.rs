//! One refresh, by the holder of the integration's lease: re-read the integration on the
//! primary, call the provider when the token is still too old, record the outcome. Also
//! the two ways a refresh starts outside a hand-out: the owner's manual refresh and one
//! step of the refresh sweep.
//!
//! A disconnection or a deletion of the user wins over a refresh in flight: the outcome
//! is written only to a user who is still live (whose row this transaction locks first)
//! and an integration that is still connected (a conditional UPDATE, rows checked); else
//! nothing is written, no ciphertext either, and the caller gets 404 as for any token of
//! a disconnected integration. `store::integrations::disconnect` and the deletion cascade
//! take the same rows first, so whichever commits second sees the other's work.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use domain::{
    UserId,
    audit::AuditAction,
    integration::{Account, IntegrationStatus},
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use store::{
    integrations::{self as repo, Integration},
    token_refresh, users,
};
use tokio::{sync::Semaphore, task::JoinSet};
use vault::TokenKind;

use crate::{
    App, AppError, Ctx,
    access::AsOwner,
    audit::{self, AuditRecord},
    integrations::oauth::client::{ProviderError, TokenSet},
    tokens::{
        IssuedToken, TokenRequest, is_fresh, issued, refreshed_since, status_changed, with_account,
    },
};

/// What one run of the refresh sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Integrations whose token expires within the horizon.
    pub due: usize,
    pub refreshed: u64,
    pub failed: u64,
    pub reauth_required: u64,
}

/// A failing integration is refreshed at most this often on demand.
const RETRY_FLOOR_SECONDS: i64 = 30;

impl App {
    /// Refreshes now (the owner's manual refresh); answers the integration, never a token.
    ///
    /// # Errors
    /// As [`App::get_valid_token`].
    pub async fn refresh_integration(
        &self,
        who: &AsOwner,
        provider: &str,
        account: Account,
    ) -> Result<Integration, AppError> {
        let (ctx, user) = (who.ctx(), who.user());
        let req = TokenRequest::forced(user, provider, account);
        let token = self.valid_token(ctx, &req).await?;
        repo::find(
            self.db().writer(),
            user,
            provider,
            &Account::Row(token.integration_id),
        )
        .await?
        .ok_or(AppError::NotFound("integration"))
    }

    /// One run of the refresh sweep: refreshes ahead of expiry every token that would
    /// expire before `now + horizon` (at most `batch` integrations), each through the token
    /// service (single flight with on-demand refreshes, the same failure rules), with at
    /// most `per_provider` refreshes in flight per provider so a sweep never floods one.
    ///
    /// # Errors
    /// Storage, when the due integrations cannot be read.
    pub async fn sweep_expiring_tokens(
        &self,
        now: DateTime<Utc>,
        horizon: Duration,
        per_provider: usize,
        batch: u64,
    ) -> Result<SweepReport, AppError> {
        let due = token_refresh::expiring_before(self.db().current(), now + horizon, batch).await?;
        let mut limits: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut tasks = JoinSet::new();
        for token_refresh::Due {
            user,
            provider,
            integration,
        } in due.iter().cloned()
        {
            let permit = limits
                .entry(provider.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(per_provider)))
                .clone();
            let app = self.clone();
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await;
                let req = TokenRequest {
                    min_validity: horizon,
                    force: false,
                    ..TokenRequest::forced(user, &provider, Account::Row(integration))
                };
                let ctx = Ctx::system("token_refresh_sweep");
                // A failure that still left a valid token is not a refresh; the
                // integration records it.
                app.valid_token(&ctx, &req).await.map(|t| t.refreshed)
            });
        }
        let mut report = SweepReport {
            due: due.len(),
            ..SweepReport::default()
        };
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(true)) => report.refreshed += 1,
                Ok(Ok(false)) => {}
                Ok(Err(AppError::ReauthorizationRequired(_))) => report.reauth_required += 1,
                Ok(Err(_)) | Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Holding the lease: refreshes `before` unless another refresh got there first.
    pub(crate) async fn refresh_leased(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        before: &Integration,
    ) -> Result<IssuedToken, AppError> {
        let user = req.user;
        // The winner re-reads after taking the lease (on the primary: `connected`).
        let current = self.reread(before).await?;
        if refreshed_since(&current, before) && is_fresh(&current, req.min_validity) {
            return self.issue(user, &current, false).await;
        }
        let now = Utc::now();
        if failed_moments_ago(&current, now) {
            return self
                .still_valid_or(
                    user,
                    &current,
                    "the last refresh failed moments ago; retrying later",
                )
                .await;
        }
        let Some(refresh_token) = self
            .read_token(self.db().current(), user, &current, TokenKind::Refresh)
            .await?
        else {
            return self
                .still_valid_or(user, &current, "no refresh token is held")
                .await;
        };
        let provider = self
            .catalog()
            .get(&current.provider)
            .ok_or(AppError::NotFound("provider"))?
            .clone();
        let answer = self.oauth_client().refresh(&provider, &refresh_token).await;
        crate::metrics::token_refresh(
            &current.provider,
            // The outcomes the alert rules and dashboard use (deploy/prometheus/alerts.yml).
            match &answer {
                Ok(_) => "ok",
                Err(ProviderError::InvalidGrant { .. }) => "reauth_required",
                Err(_) => "error",
            },
        );
        match answer {
            Ok(tokens) => {
                self.record_refreshed(ctx, user, &current, tokens, now)
                    .await
            }
            Err(e) => {
                self.record_refresh_failure(ctx, user, &current, &e, now)
                    .await
            }
        }
    }

    /// Stores the new tokens and `active`, with the audit entry, in one transaction.
    async fn record_refreshed(
        &self,
        ctx: &Ctx,
        user: UserId,
        integration: &Integration,
        tokens: TokenSet,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, AppError> {
        let txn = self.db().begin().await?;
        if !users::lock_live(&txn, user).await? {
            return Err(AppError::NotFound("user"));
        }
        let connected = token_refresh::record_success(
            &txn,
            user,
            integration.id,
            tokens.expires_at,
            tokens.scopes.as_deref(),
            now,
        )
        .await?;
        if !connected {
            // Disconnected during the provider call: the fresh tokens are not kept.
            return Err(AppError::NotFound("integration"));
        }
        // A rotated refresh token is stored in the same transaction as the new access
        // token; an answer without one keeps the stored one.
        self.store_tokens(&txn, user, integration, &tokens).await?;
        audit::record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::TokenRefreshed, Some(user))
                .resource("integration", integration.provider.clone())
                .outcome("success")
                .details(with_account(
                    json!({"provider": integration.provider,
                    "refresh_token_rotated": tokens.refresh_token.is_some()}),
                    integration,
                )),
        )
        .await?;
        if integration.status == IntegrationStatus::RefreshFailed {
            let to = IntegrationStatus::Active;
            status_changed(self, &txn, ctx, user, integration, to, None).await?;
        }
        txn.commit().await?;
        let fresh = self.reread(integration).await?;
        Ok(IssuedToken {
            access_token: tokens.access_token,
            ..issued(SecretString::from(String::new()), &fresh, true)
        })
    }

    /// Records a refused or failed refresh (`reauth_required` or `refresh_failed`) with
    /// its audit entry; hands out the current token while it is still valid.
    async fn record_refresh_failure(
        &self,
        ctx: &Ctx,
        user: UserId,
        integration: &Integration,
        e: &ProviderError,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, AppError> {
        let terminal = matches!(e, ProviderError::InvalidGrant { .. });
        let status = if terminal {
            IntegrationStatus::ReauthRequired
        } else {
            IntegrationStatus::RefreshFailed
        };
        let message = e.to_string();
        let not_before = match e {
            ProviderError::Transient {
                retry_after: Some(wait),
                ..
            } => Duration::from_std(*wait).ok().map(|w| now + w),
            _ => None,
        };
        let txn = self.db().begin().await?;
        if !users::lock_live(&txn, user).await? {
            return Err(AppError::NotFound("user"));
        }
        let connected = token_refresh::record_failure(
            &txn,
            user,
            integration.id,
            status,
            &message,
            now,
            not_before,
        )
        .await?;
        if !connected {
            // Disconnected during the provider call (which is why the grant is gone).
            return Err(AppError::NotFound("integration"));
        }
        audit::record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::TokenRefreshed, Some(user))
                .resource("integration", integration.provider.clone())
                .outcome("failure")
                .details(with_account(
                    json!({"provider": integration.provider, "error": message}),
                    integration,
                )),
        )
        .await?;
        if integration.status != status {
            status_changed(self, &txn, ctx, user, integration, status, Some(&message)).await?;
        }
        txn.commit().await?;
        if terminal {
            return Err(AppError::ReauthorizationRequired(format!(
                "{} rejected the refresh token: the user must reconnect",
                integration.provider
            )));
        }
        self.still_valid_or(user, integration, &message).await
    }
}

/// At most one attempt per 30 s while failing, and never before the provider's
/// `Retry-After`.
fn failed_moments_ago(i: &Integration, now: DateTime<Utc>) -> bool {
    let failing = i.status == IntegrationStatus::RefreshFailed;
    let recently = i
        .last_refresh_attempt_at
        .is_some_and(|t| now - t < Duration::seconds(RETRY_FLOOR_SECONDS))
        || i.refresh_not_before.is_some_and(|t| now < t);
    failing && recently
}
