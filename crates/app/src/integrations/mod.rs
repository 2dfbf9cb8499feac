//! Integrations: the connect flow (`flow`), the hosted connect page (`connect`), the
//! catalog of OAuth providers and the client that speaks to them (`oauth`), the purge of
//! expired flows (`expired`); here: list, disconnect, and revocation at the provider.

pub mod connect;
pub mod expired;
pub mod flow;
pub mod oauth;

use chrono::Utc;
use domain::{UserId, audit::AuditAction, integration::Account};
use serde_json::{Value, json};
use store::integrations::{self as repo, Integration};
use vault::TokenKind;

pub(crate) use flow::state_hash;
pub use flow::{AuthorizeStart, OAuthSettings};

use crate::{
    App, AppError,
    access::AsOwner,
    audit::{self, AuditRecord},
    integrations::oauth::Provider,
    tokens::with_account,
};

/// What a disconnection did at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The provider confirmed the revocation.
    Revoked,
    /// The provider has no revocation endpoint: deleted locally only.
    NotSupported,
    /// No token was held (already disconnected, or re-authorization pending).
    NoToken,
    /// The provider call failed; the tokens were deleted here all the same.
    Failed,
}

impl Revocation {
    /// The name recorded in the audit entry.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::NotSupported => "not_supported",
            Self::NoToken => "no_token",
            Self::Failed => "failed",
        }
    }
}

impl App {
    pub(super) fn provider(&self, name: &str) -> Result<&Provider, AppError> {
        self.catalog()
            .get(name)
            .ok_or(AppError::NotFound("provider"))
    }

    /// The user's integrations, by provider.
    ///
    /// # Errors
    /// Storage.
    pub async fn list_integrations(&self, who: &AsOwner) -> Result<Vec<Integration>, AppError> {
        Ok(repo::list(self.db().reader(), who.user()).await?)
    }

    /// Disconnects the account `account` addresses (the default without one): revokes at
    /// the provider where it can (best effort, the outcome goes into the audit entry),
    /// deletes the ciphertexts, marks the integration `disconnected`. The user's other
    /// accounts with the provider stay; the next-oldest becomes the default.
    ///
    /// # Errors
    /// `NotFound` when the user never connected the provider (or that account); storage.
    pub async fn disconnect_integration(
        &self,
        who: &AsOwner,
        provider: &str,
        account: &Account,
    ) -> Result<Revocation, AppError> {
        let (ctx, user) = (who.ctx(), who.user());
        let p = self.provider(provider)?;
        let integration = repo::find(self.db().current(), user, provider, account)
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        let revocation = self.revoke_at_provider(p, user, &integration).await?;
        let txn = self.db().begin().await?;
        let row = Account::Row(integration.id);
        repo::disconnect(&txn, user, provider, &row, Utc::now())
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        let entry = |action, details| {
            AuditRecord::new(action, Some(user))
                .resource("integration", provider)
                .details(with_account(details, &integration))
        };
        if revocation == Revocation::Revoked {
            let revoked = entry(AuditAction::TokenRevoked, json!({"provider": provider}));
            audit::record(&txn, ctx, revoked).await?;
        }
        let details = json!({"provider": provider, "revocation": revocation.as_str(),
            "local_only": revocation != Revocation::Revoked});
        let disconnected = entry(AuditAction::IntegrationDisconnected, details);
        audit::record(&txn, ctx, disconnected).await?;
        self.emit(
            &txn,
            crate::events::Event::integration_disconnected(&integration, revocation.as_str()),
        )
        .await?;
        txn.commit().await?;
        Ok(revocation)
    }

    /// Revokes every grant the user holds, best effort, before a deletion removes the
    /// tokens: `{"google": "revoked", "microsoft": "not_supported"}` for the audit entry.
    ///
    /// # Errors
    /// Storage (a provider failure is an outcome, not an error).
    pub(crate) async fn revoke_all_grants(&self, user: UserId) -> Result<Value, AppError> {
        let mut out = serde_json::Map::new();
        for integration in repo::list(self.db().current(), user).await? {
            if !integration.status.holds_tokens() {
                continue;
            }
            // Best effort: nothing here may block the deletion that follows.
            let outcome = match self.catalog().get(&integration.provider) {
                Some(p) => self
                    .revoke_at_provider(p, user, &integration)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(provider = %p.name, error = %e, "cannot revoke before deletion");
                        Revocation::Failed
                    }),
                None => Revocation::NotSupported,
            };
            // The default account under its provider's name, as with one account per
            // provider; any other as `provider/account_id`.
            let key = if out.contains_key(&integration.provider) {
                let account = integration.account_id.as_deref().unwrap_or_default();
                format!("{}/{account}", integration.provider)
            } else {
                integration.provider.clone()
            };
            out.insert(key, json!(outcome.as_str()));
        }
        Ok(Value::Object(out))
    }

    async fn revoke_at_provider(
        &self,
        p: &Provider,
        user: UserId,
        integration: &Integration,
    ) -> Result<Revocation, AppError> {
        if !p.can_revoke() {
            return Ok(Revocation::NotSupported);
        }
        // The refresh token ends the whole grant (RFC 7009 §2.1); some providers take
        // only the access token.
        let kinds = match p.revoke_token {
            crate::integrations::oauth::RevokeToken::Refresh => {
                [TokenKind::Refresh, TokenKind::Access]
            }
            crate::integrations::oauth::RevokeToken::Access => {
                [TokenKind::Access, TokenKind::Refresh]
            }
        };
        // The primary: a replica could lag behind a refresh that rotated the token.
        let conn = self.db().current();
        let mut token = None;
        for kind in kinds {
            token = self.read_token(conn, user, integration, kind).await?;
            if token.is_some() {
                break;
            }
        }
        let Some(token) = token else {
            return Ok(Revocation::NoToken);
        };
        Ok(match self.oauth_client().revoke(p, &token).await {
            Ok(true) => Revocation::Revoked,
            Ok(false) => Revocation::NotSupported,
            Err(e) => {
                tracing::warn!(provider = %p.name, error = %e, "revocation at the provider failed; tokens deleted locally");
                Revocation::Failed
            }
        })
    }
}

pub(crate) fn key_version(ciphertext: &[u8]) -> i32 {
    vault::key_version_of(ciphertext)
        .ok()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or_default()
}
