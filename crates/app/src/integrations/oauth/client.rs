//! Talking to providers: the authorize URL, code exchange, refresh, revocation (the
//! `oauth2` crate over our own reqwest client) and user info. Every call has timeouts and
//! our user agent. Tokens travel only inside `SecretString`s; errors carry the provider's
//! OAuth error code, never a token or a response body.

use std::{borrow::Cow, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenUrl,
    basic::BasicClient,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::outbound::Outbound;

use super::{
    answer::{Answer, retry_after, taken, token_set},
    catalog::{Provider, TokenAuth},
};

/// What a provider answered to a code exchange or a refresh.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the provider sent none (Google on refresh): keep the stored one.
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted, when the provider says (else: those asked for).
    pub scopes: Option<Vec<String>>,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// `invalid_grant`: the code or refresh token is revoked, expired or used. Terminal.
    #[error("{provider} answered invalid_grant")]
    InvalidGrant { provider: String },
    /// A definite refusal (bad client, bad request): retrying will not help.
    #[error("{provider} refused the request: {code}")]
    Rejected { provider: String, code: String },
    /// Timeouts, connection failures, 5xx, 429, unreadable answers: worth retrying.
    #[error("{provider} is unavailable: {reason}")]
    Transient {
        provider: String,
        reason: String,
        /// The provider's `Retry-After`, when it sent one with a 429 or 503.
        retry_after: Option<Duration>,
    },
    /// The provider is not configured on this deployment.
    #[error("{provider} is not configured (OAUTH_{upper}_CLIENT_ID and _CLIENT_SECRET)", upper = provider.to_ascii_uppercase())]
    NotConfigured { provider: String },
}

/// A PKCE pair and where to send the user.
#[derive(Debug)]
pub struct AuthorizeUrl {
    pub url: Url,
    /// The PKCE verifier to keep (sealed) until the code comes back; `None` without PKCE.
    pub pkce_verifier: Option<SecretString>,
}

/// The HTTP client for providers: [`Outbound`] with the peer named by provider and
/// operation.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    outbound: Outbound,
}

impl OAuthClient {
    /// Provider calls over `outbound`.
    #[must_use]
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }

    /// The outbound client (shared with Clerk's API and event deliveries).
    pub(crate) fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The underlying client, for building requests.
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.outbound.http()
    }

    /// Sends one request as peer `{provider}_{op}` (never a token in the span).
    pub(crate) async fn execute(
        &self,
        provider: &str,
        op: &'static str,
        request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        self.outbound
            .send(&format!("{provider}_{op}"), request)
            .await
    }

    /// The consent URL with `state`, the scopes, the provider's extra parameters and (when
    /// the provider takes PKCE) a fresh S256 challenge.
    #[must_use]
    pub fn authorize_url(
        &self,
        p: &Provider,
        client_id: &str,
        state: &str,
        scopes: &[String],
        redirect: &Url,
    ) -> AuthorizeUrl {
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_auth_uri(AuthUrl::from_url(p.authorize_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        let state = state.to_owned();
        let mut req = client.authorize_url(move || CsrfToken::new(state));
        // One `scope` parameter joined by the provider's separator (some want commas).
        if !scopes.is_empty() {
            req = req.add_scope(Scope::new(scopes.join(&p.scope_separator)));
        }
        for (k, v) in &p.authorize_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let mut verifier = None;
        if p.pkce {
            let (challenge, v) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            verifier = Some(SecretString::from(v.secret().clone()));
        }
        let (url, _) = req.url();
        AuthorizeUrl {
            url,
            pkce_verifier: verifier,
        }
    }

    /// Exchanges an authorization code (with the PKCE verifier, when one was sent).
    ///
    /// # Errors
    /// [`ProviderError`] by kind.
    pub async fn exchange_code(
        &self,
        p: &Provider,
        code: &str,
        verifier: Option<&SecretString>,
        redirect: &Url,
    ) -> Result<TokenSet, ProviderError> {
        let client = token_client(p)?;
        let redirect = RedirectUrl::from_url(redirect.clone());
        let mut req = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
        }
        let seen = Arc::default();
        let http = self.http_fn(&p.name, "token", Arc::clone(&seen));
        let answer = req.request_async(&http).await;
        token_set(p, answer, taken(&seen))
    }

    /// Refreshes with `refresh_token`.
    ///
    /// # Errors
    /// [`ProviderError`] by kind; `InvalidGrant` means the grant is gone.
    pub async fn refresh(
        &self,
        p: &Provider,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        let client = token_client(p)?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let seen = Arc::default();
        let http = self.http_fn(&p.name, "refresh", Arc::clone(&seen));
        let answer = client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await;
        token_set(p, answer, taken(&seen))
    }

    /// RFC 7009 revocation of `token` (the refresh token ends the grant). `Ok(false)` when
    /// the provider has no revocation endpoint.
    ///
    /// # Errors
    /// [`ProviderError`] by kind.
    pub async fn revoke(&self, p: &Provider, token: &SecretString) -> Result<bool, ProviderError> {
        let Some(url) = &p.revoke_url else {
            return Ok(false);
        };
        let (id, secret) = credentials(p)?;
        let mut form = vec![("token", token.expose_secret().to_owned())];
        let mut req = self.http().post(url.clone());
        match p.token_auth {
            TokenAuth::ClientSecretBasic => req = req.basic_auth(id, Some(secret)),
            TokenAuth::ClientSecretPost => {
                form.push(("client_id", id));
                form.push(("client_secret", secret));
            }
        }
        let body = serde_urlencoded_form(&form);
        let request = req
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .build()
            .map_err(|e| transient(p, &e))?;
        let res = self
            .execute(&p.name, "revoke", request)
            .await
            .map_err(|e| transient(p, &e))?;
        let status = res.status();
        if status.is_success() {
            Ok(true)
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(ProviderError::Transient {
                provider: p.name.clone(),
                reason: format!("revocation answered {}", status.as_u16()),
                retry_after: retry_after(status, res.headers()),
            })
        } else {
            Err(ProviderError::Rejected {
                provider: p.name.clone(),
                code: format!("revocation answered {}", status.as_u16()),
            })
        }
    }

    /// The provider's user info for `access_token` (JSON).
    ///
    /// # Errors
    /// [`ProviderError`] by kind; `Ok(None)` when the provider has no user-info endpoint.
    pub async fn userinfo(
        &self,
        p: &Provider,
        access_token: &SecretString,
    ) -> Result<Option<Value>, ProviderError> {
        let Some(url) = &p.userinfo_url else {
            return Ok(None);
        };
        let request = self
            .http()
            .get(url.clone())
            .bearer_auth(access_token.expose_secret())
            .header(http::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| transient(p, &e))?;
        let res = self
            .execute(&p.name, "userinfo", request)
            .await
            .map_err(|e| transient(p, &e))?;
        let status = res.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ProviderError::Transient {
                provider: p.name.clone(),
                reason: format!("user info answered {}", status.as_u16()),
                retry_after: retry_after(status, res.headers()),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                provider: p.name.clone(),
                code: format!("user info answered {}", status.as_u16()),
            });
        }
        res.json::<Value>()
            .await
            .map(Some)
            .map_err(|_| ProviderError::Transient {
                provider: p.name.clone(),
                reason: "user info was not JSON".to_owned(),
                retry_after: None,
            })
    }

    /// The `oauth2` crate's HTTP seam over our reqwest client.
    fn http_fn(
        &self,
        provider: &str,
        op: &'static str,
        seen: Arc<std::sync::Mutex<Option<Answer>>>,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
    > + use<> {
        let this = self.clone();
        let provider = provider.to_owned();
        move |req: oauth2::HttpRequest| {
            let this = this.clone();
            let provider = provider.clone();
            let seen = seen.clone();
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                let request = this
                    .http()
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .build()?;
                let res = this.execute(&provider, op, request).await?;
                let status = res.status();
                let headers = res.headers().clone();
                if let Ok(mut slot) = seen.lock() {
                    *slot = Some(Answer {
                        status: status.as_u16(),
                        retry_after: retry_after(status, &headers),
                    });
                }
                let bytes = res.bytes().await?;
                let mut out = http::Response::new(bytes.to_vec());
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok(out)
            })
        }
    }
}

pub use crate::outbound::install_crypto_provider;

/// The client of `p`'s token endpoint (code exchange and refresh), with its credentials.
fn token_client(p: &Provider) -> Result<TokenClient, ProviderError> {
    let (id, secret) = credentials(p)?;
    Ok(BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_type(auth_type(p))
        .set_token_uri(TokenUrl::from_url(p.token_url.clone())))
}

/// A [`BasicClient`] with only its token endpoint set.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn credentials(p: &Provider) -> Result<(String, String), ProviderError> {
    let c = p
        .client
        .as_ref()
        .ok_or_else(|| ProviderError::NotConfigured {
            provider: p.name.clone(),
        })?;
    Ok((c.id.clone(), c.secret.expose_secret().to_owned()))
}

fn auth_type(p: &Provider) -> AuthType {
    match p.token_auth {
        TokenAuth::ClientSecretBasic => AuthType::BasicAuth,
        TokenAuth::ClientSecretPost => AuthType::RequestBody,
    }
}

pub(super) fn transient(p: &Provider, e: &reqwest::Error) -> ProviderError {
    let reason = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ProviderError::Transient {
        provider: p.name.clone(),
        reason: reason.to_owned(),
        retry_after: None,
    }
}

fn serde_urlencoded_form(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}
