//! Handing out tokens: every hand-out, whatever its outcome, is counted and audited
//! (`token.accessed`, through the batched access log), and a token is only returned once
//! its entry has committed: a token that could not be audited is not served (503). Whether a token is valid or must be
//! refreshed first (single flight) is `tokens.rs`'s business.
//!
//! A service names the user (`POST /internal/tokens/get` and `/refresh`), so
//! [`App::get_token_for`] reads the user, the integration and the access-token ciphertext
//! in ONE statement (`store::token_lookup`) instead of three: this is the busiest route.
//! Only when that read finds nothing do the narrow lookups run, to tell an unknown user
//! (404, nothing audited, as before) from a missing integration (404, audited).
//!
//! A service key's limits (`service_keys::limits`) are checked here: the provider and the
//! requested scopes before anything is read, the scopes the token carries (for a request
//! naming none) once the integration is read. A refusal is 403 `forbidden`, audited as a
//! `token.accessed` entry with outcome `denied` whenever the user exists. The provider
//! proxy (`crate::proxy`) goes through the same lookup and limit check
//! ([`App::lookup_within_limits`]) and audits as `token.proxied` instead.

use chrono::Duration;
use domain::{UserId, audit::AuditAction, integration::Account};
use serde_json::json;
use store::{
    integrations::Integration,
    token_lookup::{self, UserBy},
    users::Deleted,
};
use vault::TokenKind;

use crate::{
    App, AppError, Ctx,
    access::{AsService, TokensRead, TokensRefresh},
    audit::AuditRecord,
    service_keys::KeyLimits,
    tokens::{IssuedToken, TokenRequest, note_account, scopes_of, usable},
    users::{UserKey, id_of},
};

/// What a service asks for, before the user it names is resolved.
#[derive(Clone, Debug)]
pub struct TokenAsk {
    pub provider: String,
    /// The provider's account id (`account_id`); the default account when `None`.
    pub account_id: Option<String>,
    /// Scopes the token must carry.
    pub scopes: Vec<String>,
    /// Refresh first when the token expires within this.
    pub min_validity: Duration,
    /// Refresh now whatever the expiry.
    pub force: bool,
}

impl TokenAsk {
    fn for_user(self, user: UserId) -> TokenRequest {
        TokenRequest {
            user,
            provider: self.provider,
            account: Account::from_option(self.account_id),
            scopes: self.scopes,
            min_validity: self.min_validity,
            force: self.force,
        }
    }
}

/// What looking up a service's ask came to.
pub(crate) enum Lookup {
    /// The user named does not exist (or is deleted): nothing to audit about.
    NoUser(AppError),
    /// The user's request and its outcome: the token, with the integration as it was read
    /// when the lookup was asked to keep it.
    Found {
        // Boxed as well: with the account it names, the request is large too.
        req: Box<TokenRequest>,
        // Boxed: the integration row is large, and most lookups are refusals or hand-outs.
        result: Result<(IssuedToken, Option<Box<Integration>>), AppError>,
    },
}

/// The integration, unless the token it holds is beyond the key's ceiling: a request that
/// names no scopes takes the token as it is, so what it carries must lie within.
fn within_limits(
    limits: &KeyLimits,
    req: &TokenRequest,
    integration: Integration,
) -> Result<Integration, AppError> {
    if req.scopes.is_empty() {
        limits.check_granted(&scopes_of(&integration))?;
    }
    Ok(integration)
}

impl App {
    /// `result` once its audit entry has committed; a token whose entry could not be
    /// written is withheld (`Unavailable`). A refusal keeps its own error.
    async fn audited(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        result: Result<IssuedToken, AppError>,
    ) -> Result<IssuedToken, AppError> {
        let audit = self.audit_access(ctx, req, &result).await;
        result.and_then(|t| audit.map(|()| t))
    }

    /// Counts and audits one hand-out (`token.accessed`), whatever its outcome; returns
    /// once the entry has committed.
    pub(crate) async fn audit_access(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        result: &Result<IssuedToken, AppError>,
    ) -> Result<(), AppError> {
        let outcome = match result {
            Ok(_) => "success",
            // Outside the calling key's limits: a policy decision, not a failure.
            Err(AppError::Forbidden(_)) => "denied",
            Err(_) => "failure",
        };
        // Bounded labels: a provider outside the catalog and user sessions are collapsed.
        let provider = if self.catalog().get(&req.provider).is_some() {
            req.provider.as_str()
        } else {
            "unknown"
        };
        let service = match (&ctx.actor().kind, &ctx.actor().id) {
            (domain::audit::ActorType::Service, Some(name)) => name.as_str(),
            (kind, _) => kind.as_str(),
        };
        crate::metrics::token_access(provider, service, outcome);
        let mut details = json!({"provider": req.provider, "scopes": req.scopes});
        match result {
            Err(e) => details["error"] = json!(e.code().as_str()),
            Ok(t) => details["refreshed"] = json!(t.refreshed),
        }
        let found = result.as_ref().ok();
        let found = found.map(|t| (t.integration_id, t.account_id.as_deref()));
        note_account(&mut details, &req.account, found);
        self.access_log()
            .record(
                ctx,
                AuditRecord::new(AuditAction::TokenAccessed, Some(req.user))
                    .resource("integration", req.provider.clone())
                    .outcome(outcome)
                    .details(details),
            )
            .await
    }

    /// For a service key with `tokens:read`: a valid access token for the provider of the
    /// user `key` names (live users only), refreshed first when it expires within
    /// `ask.min_validity`, audited like [`App::get_valid_token`].
    ///
    /// # Errors
    /// `Forbidden` outside the key's limits (audited when the user exists); `NotFound` for
    /// an unknown or deleted user (not audited: there is no one to audit
    /// about), otherwise as [`App::get_valid_token`].
    pub async fn get_token(
        &self,
        service: &AsService<TokensRead>,
        key: &UserKey,
        ask: TokenAsk,
    ) -> Result<IssuedToken, AppError> {
        let ask = TokenAsk {
            force: false,
            ..ask
        };
        self.token_for(service.ctx(), service.key().limits(), key, ask)
            .await
    }

    /// For a service key with `tokens:refresh`: [`Self::get_token`], refreshed now
    /// whatever the expiry.
    ///
    /// # Errors
    /// As [`Self::get_token`].
    pub async fn refresh_token(
        &self,
        service: &AsService<TokensRefresh>,
        key: &UserKey,
        ask: TokenAsk,
    ) -> Result<IssuedToken, AppError> {
        let ask = TokenAsk { force: true, ..ask };
        self.token_for(service.ctx(), service.key().limits(), key, ask)
            .await
    }

    /// The hand-out within the calling key's limits: `Forbidden` outside them (audited
    /// when the user exists).
    async fn token_for(
        &self,
        ctx: &Ctx,
        limits: &KeyLimits,
        key: &UserKey,
        ask: TokenAsk,
    ) -> Result<IssuedToken, AppError> {
        match self
            .lookup_within_limits(ctx, limits, key, ask, false)
            .await?
        {
            Lookup::NoUser(e) => Err(e),
            Lookup::Found { req, result } => {
                self.audited(ctx, &req, result.map(|(token, _)| token))
                    .await
            }
        }
    }

    /// The token a service's `ask` gets within the key's `limits`, not yet audited (the
    /// hand-out audits it as `token.accessed`, the provider proxy as `token.proxied`).
    /// Checks the provider and the requested scopes before anything is read, and the
    /// scopes the token carries once the integration is read. `keep_integration`: return
    /// the integration as read (the proxy's later forced refresh compares with it); the
    /// hand-out does not need it and skips the copy.
    pub(crate) async fn lookup_within_limits(
        &self,
        ctx: &Ctx,
        limits: &KeyLimits,
        key: &UserKey,
        ask: TokenAsk,
        keep_integration: bool,
    ) -> Result<Lookup, AppError> {
        if let Err(denied) = limits.check_request(&ask.provider, &ask.scopes) {
            // An unknown user gets the same 403, so a key cannot probe for users beyond
            // its limits.
            let Some(user) = self.find_user(key, Deleted::Exclude).await? else {
                return Ok(Lookup::NoUser(denied));
            };
            let req = ask.for_user(id_of(&user));
            return Ok(Lookup::Found {
                req: Box::new(req),
                result: Err(denied),
            });
        }
        let by = match key {
            UserKey::Id(id) => UserBy::Id(id.as_uuid()),
            UserKey::Clerk(c) => UserBy::Clerk(c.as_str()),
        };
        // The primary, never a replica: a lagging one would hand out a token after its
        // integration was disconnected or its user deleted.
        let found = token_lookup::find(
            self.db().current(),
            by,
            &ask.provider,
            ask.account_id.as_deref(),
            TokenKind::Access.as_str(),
        )
        .await?;
        let Some((integration, access)) = found else {
            let Some(user) = self.find_user(key, Deleted::Exclude).await? else {
                return Ok(Lookup::NoUser(AppError::NotFound("user")));
            };
            let req = ask.for_user(id_of(&user));
            let integration = self.connected(req.user, &req.provider, &req.account).await;
            let result = match integration.and_then(|i| within_limits(limits, &req, i)) {
                Ok(i) => {
                    self.valid_token_with(ctx, &req, i, None, keep_integration)
                        .await
                }
                Err(e) => Err(e),
            };
            return Ok(Lookup::Found {
                req: Box::new(req),
                result,
            });
        };
        let req = ask.for_user(integration.user_id);
        let usable = usable(integration, &req.provider);
        let result = match usable.and_then(|i| within_limits(limits, &req, i)) {
            Ok(i) => {
                let sealed = access.map(|(_, ciphertext)| ciphertext);
                self.valid_token_with(ctx, &req, i, sealed, keep_integration)
                    .await
            }
            Err(e) => Err(e),
        };
        Ok(Lookup::Found {
            req: Box::new(req),
            result,
        })
    }

    /// [`Self::valid_token_of`], and when `keep`, the integration as it was read before the
    /// call (what a later forced refresh compares with, to join a refresh another caller
    /// made meanwhile instead of making its own).
    async fn valid_token_with(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        integration: Integration,
        access: Option<Vec<u8>>,
        keep: bool,
    ) -> Result<(IssuedToken, Option<Box<Integration>>), AppError> {
        let before = keep.then(|| Box::new(integration.clone()));
        let token = self.valid_token_of(ctx, req, integration, access).await?;
        Ok((token, before))
    }
}
