//! The provider proxy (API.md "Provider proxy and connect page"): a service with
//! `tokens:read` calls a provider's API through us, as one of our users, without ever
//! holding the user's token. This folder owns the call: where it may go (`target`:
//! catalog base + the caller's path, no way out of it, no private address unless
//! configured), which headers cross (`headers`), how bodies stream within a size limit
//! (`body`), the token injected, one single-flight refresh and one retry on a provider
//! 401, the `token.proxied` audit entry and the metrics.
//!
//! The token comes from the same lookup as the hand-out, with the same limit check
//! ([`App::lookup_within_limits`]): a key limited to other providers or scopes is refused
//! (403, audited as `denied`). The refresh is the hand-out's (`tokens`), forced, with the
//! integration as it was before the call, so concurrent calls that all get a 401 join one
//! refresh instead of making one each.
//!
//! A request body up to [`REPLAY_LIMIT`] is held so it can be sent again after the
//! refresh; a larger one streams, and a 401 to it still refreshes but is passed on (the
//! caller may send it again, now with a fresh token behind it). Audited without bodies,
//! query values or the token: the entry names the provider, method, path and status.

mod body;
pub mod headers;
mod target;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use domain::audit::AuditAction;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

pub use body::{BodyTooLarge, Limited, ProxyBody};

use crate::{
    App, AppError, Ctx,
    access::{AsService, TokensRead},
    audit::AuditRecord,
    integrations::oauth::catalog::ApiBase,
    tokens::{
        IssuedToken, TokenRequest,
        handout::{Lookup, TokenAsk},
        note_account,
    },
    users::UserKey,
};

/// A request body up to this size is held in memory so it can be replayed after a refresh.
pub const REPLAY_LIMIT: usize = 256 * 1024;

/// The proxy's limits (`PROXY_MAX_BODY_BYTES`, `PROXY_TIMEOUT_SECONDS`).
#[derive(Clone, Copy, Debug)]
pub struct ProxySettings {
    /// The largest request or response body, in bytes.
    pub max_body_bytes: u64,
    /// How long one provider call may take, its body included.
    pub timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            timeout: Duration::from_secs(25),
        }
    }
}

/// One call to forward.
pub struct ProxyCall {
    /// A provider of the catalog.
    pub provider: String,
    /// The user whose token is used (`X-User-Id`).
    pub user: UserKey,
    /// Which of the user's accounts with the provider (`X-Account-Id`); the default when
    /// `None`.
    pub account_id: Option<String>,
    pub method: Method,
    /// The path under the provider's API base, as sent (percent-encoded).
    pub path: String,
    /// The query string, as sent.
    pub query: Option<String>,
    /// The caller's headers (credentials and hop-by-hop headers are dropped here).
    pub headers: HeaderMap,
    pub body: ProxyBody,
}

/// The provider's answer, its body still streaming.
pub struct Proxied {
    pub status: StatusCode,
    /// Its headers, without hop-by-hop headers and cookies.
    pub headers: HeaderMap,
    /// Cut off with [`BodyTooLarge`] past the limit.
    pub body: Limited<reqwest::Body>,
}

impl std::fmt::Debug for Proxied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxied")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Uses `settings` for the provider proxy.
    #[must_use]
    pub fn with_proxy_settings(mut self, settings: ProxySettings) -> Self {
        self.proxy = settings;
        self
    }

    /// Forwards `call` to the provider's API with the user's access token, within the
    /// calling key's limits, and audits it (`token.proxied`).
    ///
    /// # Errors
    /// `InvalidRequest` for a path that would leave the provider's API; `NotFound` for an
    /// unknown provider, user or integration; `Forbidden` outside the key's limits;
    /// `PayloadTooLarge`, `ProviderUnreachable`, `ProviderTimeout`; the hand-out's errors
    /// (`ReauthorizationRequired`, …); `Unavailable` when the audit entry cannot be written.
    pub async fn proxy(
        &self,
        service: &AsService<TokensRead>,
        mut call: ProxyCall,
    ) -> Result<Proxied, AppError> {
        let ctx = service.ctx();
        let provider = call.provider.clone();
        let base = self
            .catalog()
            .get(&provider)
            .ok_or(AppError::NotFound("provider"))?
            .api_base
            .clone()
            .ok_or(AppError::NotFound("provider API base URL"))?;
        // Refused before anything is read or sent.
        let url = target::join(&base, &call.path, call.query.as_deref())?;
        if let Some(len) = declared_length(&call.headers)
            && len > self.proxy.max_body_bytes
        {
            return Err(too_large(self.proxy.max_body_bytes));
        }
        let ask = TokenAsk {
            provider: provider.clone(),
            account_id: call.account_id.clone(),
            scopes: Vec::new(),
            min_validity: ChronoDuration::seconds(60),
            force: false,
        };
        let limits = service.key().limits();
        let (req, result) = match self
            .lookup_within_limits(ctx, limits, &call.user, ask, true)
            .await?
        {
            Lookup::NoUser(e) => return Err(e),
            Lookup::Found { req, result } => (req, result),
        };
        let audit = Audit {
            ctx,
            req: &req,
            account: result
                .as_ref()
                .ok()
                .map(|(t, _)| (t.integration_id, t.account_id.clone())),
            method: call.method.clone(),
            path: url.path().to_owned(),
        };
        let result = match result {
            Ok(found) => {
                self.forward_with_retry(ctx, &req, (&base, &url), &mut call, found)
                    .await
            }
            Err(e) => Err(e),
        };
        self.audit_proxied(&audit, &result).await?;
        result.map(|(answer, _)| self.answer(answer))
    }

    /// Sends the call; on a 401, refreshes once (single flight) and sends it once more
    /// when the body can be replayed. Returns the answer and whether a refresh happened.
    async fn forward_with_retry(
        &self,
        ctx: &Ctx,
        req: &TokenRequest,
        (base, url): (&ApiBase, &Url),
        call: &mut ProxyCall,
        (token, before): (IssuedToken, Option<Box<store::integrations::Integration>>),
    ) -> Result<(reqwest::Response, bool), AppError> {
        target::refuse_private(&req.provider, base).await?;
        let first = self.forward(req, url, call, &token.access_token).await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok((first, token.refreshed));
        }
        // The provider no longer takes this token (revoked, or expired early): one refresh,
        // joined by every concurrent call that was refused the same token.
        let before = match before {
            Some(read) if !token.refreshed => *read,
            _ => self.reread_issued(req, &token).await?,
        };
        let forced = TokenRequest {
            min_validity: ChronoDuration::zero(),
            force: true,
            ..req.clone()
        };
        let fresh = self.valid_token_of(ctx, &forced, before, None).await?;
        let same = fresh.access_token.expose_secret() == token.access_token.expose_secret();
        if same || !call.body.is_replayable() {
            return Ok((first, true));
        }
        drop(first);
        let second = self.forward(req, url, call, &fresh.access_token).await?;
        Ok((second, true))
    }

    /// The integration `token` came from, as it is now (for the refresh after a 401).
    async fn reread_issued(
        &self,
        req: &TokenRequest,
        token: &IssuedToken,
    ) -> Result<store::integrations::Integration, AppError> {
        let row = domain::integration::Account::Row(token.integration_id);
        self.connected(req.user, &req.provider, &row).await
    }

    /// One call to the provider's API with `token` injected.
    async fn forward(
        &self,
        req: &TokenRequest,
        url: &Url,
        call: &mut ProxyCall,
        token: &SecretString,
    ) -> Result<reqwest::Response, AppError> {
        let outbound = self.oauth_client().outbound();
        let mut headers = headers::outgoing(&call.headers);
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
            .map_err(|_| AppError::Internal("a stored token is not a header value".into()))?;
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
        let request = outbound
            .http()
            .request(call.method.clone(), url.clone())
            .headers(headers)
            .body(call.body.take())
            .timeout(self.proxy.timeout)
            .build()
            .map_err(|_| AppError::InvalidRequest("the request cannot be forwarded".into()))?;
        let peer = format!("{}_api", req.provider);
        let answer = outbound
            .send(&peer, request)
            .await
            .map_err(|e| send_error(&req.provider, self.proxy.max_body_bytes, &e))?;
        if let Some(len) = declared_length(answer.headers())
            && len > self.proxy.max_body_bytes
        {
            return Err(AppError::Provider(format!(
                "{}'s answer is larger than the proxy's limit of {} bytes",
                req.provider, self.proxy.max_body_bytes
            )));
        }
        Ok(answer)
    }

    fn answer(&self, answer: reqwest::Response) -> Proxied {
        Proxied {
            status: answer.status(),
            headers: headers::incoming(answer.headers()),
            body: Limited::new(reqwest::Body::from(answer), self.proxy.max_body_bytes),
        }
    }

    /// Counts and audits one proxied call; returns once the entry has committed.
    async fn audit_proxied(
        &self,
        audit: &Audit<'_>,
        result: &Result<(reqwest::Response, bool), AppError>,
    ) -> Result<(), AppError> {
        let req = audit.req;
        let (outcome, status) = match result {
            Ok((answer, _)) => ("success", answer.status().as_u16().to_string()),
            Err(AppError::Forbidden(_)) => ("denied", "forbidden".to_owned()),
            Err(e) => ("failure", e.code().as_str().to_owned()),
        };
        crate::metrics::proxied(&req.provider, &status);
        let mut details = json!({"provider": req.provider, "method": audit.method.as_str(),
            "path": audit.path});
        match result {
            Ok((answer, refreshed)) => {
                details["status"] = json!(answer.status().as_u16());
                details["refreshed"] = json!(refreshed);
            }
            Err(e) => details["error"] = json!(e.code().as_str()),
        }
        let found = audit.account.as_ref().map(|(id, a)| (*id, a.as_deref()));
        note_account(&mut details, &req.account, found);
        self.access_log()
            .record(
                audit.ctx,
                AuditRecord::new(AuditAction::TokenProxied, Some(req.user))
                    .resource("integration", req.provider.clone())
                    .outcome(outcome)
                    .details(details),
            )
            .await
    }
}

/// What the audit entry of one call says, besides its outcome.
struct Audit<'a> {
    ctx: &'a Ctx,
    req: &'a TokenRequest,
    /// The integration and provider account of the token found, if one was.
    account: Option<(domain::IntegrationId, Option<String>)>,
    method: Method,
    /// The joined path, without the query (its values may be secrets).
    path: String,
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn too_large(limit: u64) -> AppError {
    AppError::PayloadTooLarge(format!(
        "the request body is larger than the proxy's limit of {limit} bytes"
    ))
}

/// The error of a call that got no answer. Never reqwest's own message: it names the URL,
/// whose query may carry secrets.
fn send_error(provider: &str, limit: u64, e: &reqwest::Error) -> AppError {
    if body::is_too_large(e) {
        too_large(limit)
    } else if e.is_timeout() {
        AppError::ProviderTimeout(format!("{provider}'s API did not answer in time"))
    } else {
        AppError::ProviderUnreachable(format!("{provider}'s API cannot be reached"))
    }
}
