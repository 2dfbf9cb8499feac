//! The OAuth connect flow (API.md "Integrations"): start an authorization, complete it.
//! The PKCE verifier is sealed beside the single-use `state`; the tokens themselves are
//! sealed in `crate::tokens::sealed`. The hosted connect page (`connect`) runs the same
//! flow on the service's own redirect URI.

use chrono::{DateTime, Duration, Utc};
use domain::{UserId, ValidationErrors, audit::AuditAction};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::integrations::{self as repo, Connected, Integration, NewState};
use url::Url;
use vault::{Binding, TokenKind};

use crate::{
    App, AppError, Ctx,
    access::AsOwner,
    audit::{self, AuditRecord},
    integrations::{
        key_version,
        oauth::{
            Provider,
            client::{ProviderError, TokenSet},
        },
    },
    tokens::with_account,
};

/// How long a `state` may wait for its code.
pub(super) const STATE_TTL: Duration = Duration::minutes(10);

/// Where the user goes to consent, and the state that comes back.
#[derive(Debug)]
pub struct AuthorizeStart {
    pub authorization_url: Url,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// What a provider granted on a completed connection, before it is stored.
pub(super) struct Grant {
    tokens: TokenSet,
    scopes: Vec<String>,
    account_id: Option<String>,
    account_email: Option<String>,
    at: DateTime<Utc>,
}
impl App {
    /// Starts connecting `provider`: a single-use state bound to user and provider, valid
    /// ten minutes, with the PKCE verifier sealed beside it.
    ///
    /// # Errors
    /// `NotFound` for an unknown provider, `Conflict` for one not configured here,
    /// `Validation` for a redirect URI outside the allow list or bad scopes, storage.
    pub async fn authorize_integration(
        &self,
        who: &AsOwner,
        provider: &str,
        redirect_uri: Option<&str>,
        scopes: Option<Vec<String>>,
    ) -> Result<AuthorizeStart, AppError> {
        self.configured_provider(provider)?;
        let redirect = self.oauth_settings().redirect(redirect_uri)?;
        self.begin_flow(who.user(), provider, &redirect, scopes)
            .await
    }

    /// The catalog's `provider`, which must have a client on this deployment.
    pub(super) fn configured_provider(&self, provider: &str) -> Result<&Provider, AppError> {
        let p = self.provider(provider)?;
        if p.client.is_none() {
            return Err(AppError::Conflict(format!(
                "{provider} is not configured on this deployment"
            )));
        }
        Ok(p)
    }

    /// The flow both authorize and the connect page start: a single-use state bound to
    /// user and provider, valid ten minutes, with the PKCE verifier sealed beside it.
    pub(crate) async fn begin_flow(
        &self,
        user: UserId,
        provider: &str,
        redirect: &Url,
        scopes: Option<Vec<String>>,
    ) -> Result<AuthorizeStart, AppError> {
        let p = self.configured_provider(provider)?;
        let Some(client) = &p.client else {
            return Err(AppError::NotFound("provider"));
        };
        let scopes = match scopes {
            Some(s) => checked_scopes(s)?,
            None => p.default_scopes.clone(),
        };
        let state = crate::random::token::<32>()?;
        let start = self
            .oauth_client()
            .authorize_url(p, &client.id, &state, &scopes, redirect);
        let verifier = start
            .pkce_verifier
            .as_ref()
            .map_or("", |v| v.expose_secret());
        let binding = Binding::new(user.as_uuid(), provider, TokenKind::PkceVerifier);
        let sealed = self.vault().seal(verifier.as_bytes(), &binding);
        let now = Utc::now();
        let expires_at = now + STATE_TTL;
        repo::insert_state(
            self.db().writer(),
            NewState {
                state_hash: state_hash(&state),
                user_id: user.as_uuid(),
                provider: provider.to_owned(),
                redirect_uri: redirect.to_string(),
                scopes,
                key_version: key_version(&sealed),
                pkce_verifier: sealed,
                created_at: now,
                expires_at,
            },
        )
        .await?;
        Ok(AuthorizeStart {
            authorization_url: start.url,
            state,
            expires_at,
        })
    }

    /// Uses up the pending flow `state` names: the scopes asked for, the PKCE verifier
    /// (`None` when the provider takes none) and the redirect URI it started with.
    async fn take_flow(
        &self,
        user: UserId,
        provider: &str,
        state: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<(Vec<String>, Option<secrecy::SecretString>, Url), AppError> {
        let row = repo::consume_state(self.db().writer(), &state_hash(state), user, provider, now)
            .await?
            .ok_or_else(|| {
                AppError::InvalidRequest(
                "the state is unknown, already used, expired, or not this user's and provider's"
                    .to_owned(),
            )
            })?;
        let binding = Binding::new(user.as_uuid(), provider, TokenKind::PkceVerifier);
        let verifier = self
            .vault()
            .open(&row.pkce_verifier, &binding)
            .map_err(|e| AppError::Internal(format!("PKCE verifier: {e}")))?;
        let verifier = verifier
            .to_secret_string()
            .map_err(|_| AppError::Internal("PKCE verifier is not UTF-8".to_owned()))?;
        let verifier = (!verifier.expose_secret().is_empty()).then_some(verifier);
        let redirect = Url::parse(&row.redirect_uri)
            .map_err(|_| AppError::Internal("stored redirect URI is invalid".to_owned()))?;
        let requested: Vec<String> = serde_json::from_value(row.scopes).unwrap_or_default();
        Ok((requested, verifier, redirect))
    }

    /// Completes a connection: uses up the state, exchanges the code with the PKCE
    /// verifier, reads the account ([`Self::exchange_at_provider`]), and stores both
    /// tokens sealed with the integration `active` and its audit entry, in one
    /// transaction ([`Self::record_connection`]).
    ///
    /// # Errors
    /// `InvalidRequest` for a reused, expired or foreign state; `Provider` when the
    /// provider refuses or fails; storage.
    pub async fn complete_integration(
        &self,
        who: &AsOwner,
        provider: &str,
        code: &str,
        state: &str,
    ) -> Result<Integration, AppError> {
        let grant = self
            .exchange_at_provider(who.user(), provider, code, state)
            .await?;
        self.record_connection(who.ctx(), who.user(), provider, grant)
            .await
    }

    /// The provider's side of a connection: the state used up, the code exchanged, the
    /// account read. Network calls only, outside any transaction.
    pub(super) async fn exchange_at_provider(
        &self,
        user: UserId,
        provider: &str,
        code: &str,
        state: &str,
    ) -> Result<Grant, AppError> {
        let p = self.provider(provider)?;
        let now = Utc::now();
        let (requested, verifier, redirect) = self.take_flow(user, provider, state, now).await?;
        let exchanged = self
            .oauth_client()
            .exchange_code(p, code, verifier.as_ref(), &redirect)
            .await;
        crate::metrics::oauth_exchange(provider, if exchanged.is_ok() { "ok" } else { "error" });
        let tokens = exchanged.map_err(|e| provider_error(&e, "the code exchange"))?;
        let info = self
            .oauth_client()
            .userinfo(p, &tokens.access_token)
            .await
            .map_err(|e| provider_error(&e, "reading the account"))?;
        let scopes = tokens.scopes.clone().unwrap_or(requested);
        let (account_id, account_email) = account(p, info.as_ref());
        Ok(Grant {
            tokens,
            scopes,
            account_id,
            account_email,
            at: now,
        })
    }

    /// Our side of a connection, in one transaction: the integration `active`, its tokens
    /// sealed, the audit entry and the event.
    pub(super) async fn record_connection(
        &self,
        ctx: &Ctx,
        user: UserId,
        provider: &str,
        grant: Grant,
    ) -> Result<Integration, AppError> {
        let txn = self.db().begin().await?;
        // The user may have been deleted during the provider calls: a deletion wins, and
        // nothing (no integration, no ciphertext) is written for a deleted user.
        if !store::users::lock_live(&txn, user).await? {
            return Err(AppError::NotFound("user"));
        }
        let integration = repo::upsert_connected(
            &txn,
            Connected {
                user_id: user,
                provider: provider.to_owned(),
                account_id: grant.account_id,
                account_email: grant.account_email,
                scopes: grant.scopes.clone(),
                expires_at: grant.tokens.expires_at,
                at: grant.at,
            },
        )
        .await?;
        let (tokens, scopes) = (grant.tokens, grant.scopes);
        self.store_tokens(&txn, user, &integration, &tokens).await?;
        audit::record(
            &txn,
            ctx,
            AuditRecord::new(AuditAction::IntegrationConnected, Some(user))
                .resource("integration", provider)
                .details(with_account(
                    json!({"provider": provider, "scopes": scopes,
                    "refresh_token": tokens.refresh_token.is_some()}),
                    &integration,
                )),
        )
        .await?;
        self.emit(
            &txn,
            crate::events::Event::integration_connected(&integration, &scopes),
        )
        .await?;
        txn.commit().await?;
        Ok(integration)
    }
}

/// The OAuth settings of the deployment that are not the catalog.
#[derive(Clone, Debug, Default)]
pub struct OAuthSettings {
    /// `OAUTH_REDIRECT_URI`: used when a client names none.
    pub default_redirect: Option<Url>,
    /// `OAUTH_ALLOWED_REDIRECT_URIS` (the default is always allowed).
    pub allowed_redirects: Vec<Url>,
    /// `PUBLIC_URL`: where browsers reach this service, the base of the hosted connect
    /// page and of its own redirect URI; `None`: no connect page.
    pub public_url: Option<Url>,
}

impl OAuthSettings {
    /// The redirect URI to use: the one asked for, which must be allowed, or the default.
    ///
    /// # Errors
    /// `Validation` on `redirect_uri`.
    pub fn redirect(&self, asked: Option<&str>) -> Result<Url, AppError> {
        let field = |m: &str| AppError::from(ValidationErrors::single("redirect_uri", m));
        let Some(asked) = asked else {
            return self
                .default_redirect
                .clone()
                .ok_or_else(|| field("is required: no OAUTH_REDIRECT_URI is configured"));
        };
        let url = Url::parse(asked).map_err(|_| field("must be an absolute URL"))?;
        let allowed = self
            .allowed_redirects
            .iter()
            .chain(self.default_redirect.iter())
            .any(|a| *a == url);
        if allowed {
            Ok(url)
        } else {
            Err(field("is not one of OAUTH_ALLOWED_REDIRECT_URIS"))
        }
    }
}

fn checked_scopes(scopes: Vec<String>) -> Result<Vec<String>, AppError> {
    domain::text::Scopes::check("scopes", &scopes)?;
    Ok(scopes)
}

/// The state is stored only as its SHA-256: a database copy cannot complete a flow.
pub(crate) fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The account id (string or number) and email at the catalog's JSON pointers.
fn account(p: &Provider, info: Option<&Value>) -> (Option<String>, Option<String>) {
    let Some(info) = info else {
        return (None, None);
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let id = info.pointer(&p.account_id).and_then(text);
    let email = p
        .account_email
        .as_deref()
        .and_then(|ptr| info.pointer(ptr))
        .and_then(text);
    (id, email)
}

fn provider_error(e: &ProviderError, during: &str) -> AppError {
    match e {
        ProviderError::NotConfigured { .. } => AppError::Conflict(e.to_string()),
        _ => AppError::Provider(format!("{during} failed: {e}")),
    }
}
