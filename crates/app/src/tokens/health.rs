//! The health probe of integrations (the `integration_health` job): user info asked with
//! the stored access token; a token the provider no longer accepts gets a refresh through
//! the token service, so a revoked grant becomes `reauth_required` (with its audit entry)
//! before a service asks for it; a failing provider changes nothing.

use chrono::{DateTime, Duration, Utc};
use domain::{UserId, integration::Account};
use serde::Serialize;
use vault::TokenKind;

use crate::{App, AppError, Ctx, integrations::oauth::client::ProviderError, tokens::TokenRequest};

/// What one run of the health probe found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub checked: usize,
    pub healthy: u64,
    pub repaired: u64,
    pub reauth_required: u64,
    pub unavailable: u64,
}

/// What a health check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// User info answered with the stored token.
    Healthy,
    /// The provider refused the token; a refresh fixed it.
    Repaired,
    /// The provider could not be asked (down, no endpoint, no token); nothing changed.
    Unavailable,
}

impl App {
    /// Probes every integration not checked since `now - every` (at most `batch`; the
    /// next run takes the rest).
    ///
    /// # Errors
    /// Storage, when the due integrations cannot be read.
    pub async fn probe_unchecked_integrations(
        &self,
        now: DateTime<Utc>,
        every: Duration,
        batch: u64,
    ) -> Result<HealthReport, AppError> {
        let due =
            store::token_refresh::unchecked_since(self.db().current(), now - every, batch).await?;
        let ctx = Ctx::system("integration_health");
        let mut report = HealthReport {
            checked: due.len(),
            ..HealthReport::default()
        };
        for d in &due {
            let row = Account::Row(d.integration);
            match self
                .check_integration(&ctx, d.user, &d.provider, &row)
                .await
            {
                Ok(Health::Healthy) => report.healthy += 1,
                Ok(Health::Repaired) => report.repaired += 1,
                Err(AppError::ReauthorizationRequired(_)) => report.reauth_required += 1,
                Ok(Health::Unavailable) | Err(_) => report.unavailable += 1,
            }
        }
        Ok(report)
    }

    /// Probes user info with the stored token; a refused token is refreshed through the
    /// token service (which marks `reauth_required` when the grant is gone).
    ///
    /// # Errors
    /// `ReauthorizationRequired` when the grant is gone; storage.
    pub async fn check_integration(
        &self,
        ctx: &Ctx,
        user: UserId,
        provider: &str,
        account: &Account,
    ) -> Result<Health, AppError> {
        let Some(p) = self.catalog().get(provider) else {
            return Ok(Health::Unavailable);
        };
        let found = store::integrations::find(self.db().current(), user, provider, account).await?;
        let Some(i) = found else {
            return Ok(Health::Unavailable);
        };
        let token = self
            .read_token(self.db().current(), user, &i, TokenKind::Access)
            .await
            .ok()
            .flatten();
        let probe = match &token {
            Some(t) => self.oauth_client().userinfo(p, t).await,
            None => Ok(None),
        };
        store::token_refresh::mark_checked(self.db().writer(), user, i.id, Utc::now()).await?;
        match probe {
            Ok(Some(_)) => Ok(Health::Healthy),
            Ok(None) | Err(ProviderError::Transient { .. }) => Ok(Health::Unavailable),
            Err(_) => {
                let req = TokenRequest::forced(user, provider, Account::Row(i.id));
                let t = self.valid_token(ctx, &req).await?;
                Ok(if t.refreshed {
                    Health::Repaired
                } else {
                    Health::Unavailable
                })
            }
        }
    }
}
