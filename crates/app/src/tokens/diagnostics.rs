//! `GET /users/{ref}/integrations/{provider}/diagnostics`: what an operator or the user
//! needs to see why a connection misbehaves. Token expiry, granted against default scopes,
//! the last refresh attempts with their errors, and a live call to the provider's user-info
//! endpoint with the stored token. Never a token.

use chrono::{DateTime, Utc};

use serde::Serialize;
use serde_json::Value;
use vault::TokenKind;

use domain::integration::{Account, Integration};

use crate::{App, AppError, access::AsOwner, audit::query::AuditQuery};

/// Whether an audit entry's `details` are about `i`: entries name their integration since
/// several accounts per provider; an older entry (without one) was about the only account
/// there was, which is the default.
fn about(details: &Value, i: &Integration) -> bool {
    match details.get("integration_id").and_then(Value::as_str) {
        Some(id) => id == i.id.to_string(),
        None => i.default,
    }
}

/// How many refresh attempts are shown.
const ATTEMPTS_SHOWN: usize = 5;

/// The diagnostics of one integration.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostics {
    pub provider: String,
    /// The integration and the provider's account these diagnostics are about.
    pub integration_id: domain::IntegrationId,
    pub account_id: Option<String>,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Negative once expired.
    pub expires_in_seconds: Option<i64>,
    pub granted_scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    /// Default scopes the grant lacks.
    pub missing_default_scopes: Vec<String>,
    pub refresh_failures: i32,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub last_refresh_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The latest refresh attempts, newest first.
    pub recent_refreshes: Vec<RefreshAttempt>,
    /// The live user-info call.
    pub userinfo_check: UserinfoCheck,
}

/// One refresh attempt, from the audit log.
#[derive(Clone, Debug, Serialize)]
pub struct RefreshAttempt {
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub error: Option<String>,
}

/// The outcome of calling the user-info endpoint with the stored access token.
#[derive(Clone, Debug, Serialize)]
pub struct UserinfoCheck {
    /// `ok`, `failed`, `not_supported` (no endpoint) or `no_token`.
    pub result: &'static str,
    /// The provider error when it failed (an HTTP status or OAuth code, never a token).
    pub error: Option<String>,
    pub checked_at: DateTime<Utc>,
}

impl App {
    /// The diagnostics of the user's integration with `provider`.
    ///
    /// # Errors
    /// `NotFound` when the user never connected it; storage.
    pub async fn integration_diagnostics(
        &self,
        who: &AsOwner,
        provider: &str,
        account: &Account,
    ) -> Result<Diagnostics, AppError> {
        let user = who.user();
        let p = self
            .catalog()
            .get(provider)
            .ok_or(AppError::NotFound("provider"))?;
        let i = store::integrations::find(self.db().current(), user, provider, account)
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        let granted: Vec<String> = serde_json::from_value(i.scopes.clone()).unwrap_or_default();
        let missing = p
            .default_scopes
            .iter()
            .filter(|s| !granted.contains(s))
            .cloned()
            .collect();
        let page = self
            .query_audit(AuditQuery {
                user_id: Some(user),
                action: Some("token.refreshed".to_owned()),
                limit: Some(50),
                ..AuditQuery::default()
            })
            .await?;
        let recent_refreshes = page
            .items
            .into_iter()
            .filter(|e| e.resource_id.as_deref() == Some(provider) && about(&e.details, &i))
            .take(ATTEMPTS_SHOWN)
            .map(|e| RefreshAttempt {
                at: e.occurred_at,
                outcome: e.outcome,
                error: e
                    .details
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect();
        let now = Utc::now();
        let token = self
            .read_token(self.db().current(), user, &i, TokenKind::Access)
            .await
            .ok()
            .flatten();
        let (result, error) = match token {
            None => ("no_token", None),
            Some(t) => match self.oauth_client().userinfo(p, &t).await {
                Ok(Some(_)) => ("ok", None),
                Ok(None) => ("not_supported", None),
                Err(e) => ("failed", Some(e.to_string())),
            },
        };
        Ok(Diagnostics {
            provider: i.provider.clone(),
            integration_id: i.id,
            account_id: i.account_id.clone(),
            status: i.status.as_str().to_owned(),
            expires_at: i.expires_at,
            expires_in_seconds: i.expires_at.map(|t| (t - now).num_seconds()),
            granted_scopes: granted,
            default_scopes: p.default_scopes.clone(),
            missing_default_scopes: missing,
            refresh_failures: i.refresh_failures,
            last_refreshed_at: i.last_refreshed_at,
            last_refresh_attempt_at: i.last_refresh_attempt_at,
            last_error: i.last_error.clone(),
            recent_refreshes,
            userinfo_check: UserinfoCheck {
                result,
                error,
                checked_at: now,
            },
        })
    }
}
