//! Reading a provider's answers: the token endpoint's JSON (or OAuth error) into a
//! [`TokenSet`] or a classified [`ProviderError`], and `Retry-After` off the HTTP answer.

use std::time::Duration;

use chrono::Utc;
use oauth2::{RequestTokenError, TokenResponse, basic::BasicErrorResponseType};
use secrecy::SecretString;

use super::{
    catalog::Provider,
    client::{ProviderError, TokenSet, transient},
};

pub(super) type TokenAnswer = Result<
    oauth2::basic::BasicTokenResponse,
    RequestTokenError<reqwest::Error, oauth2::basic::BasicErrorResponse>,
>;

/// `Retry-After` of a 429 or 503 answer: delay-seconds or an HTTP date (RFC 9110
/// §10.2.3), capped at an hour so a bad header cannot park an integration for long.
pub(crate) fn retry_after(
    status: reqwest::StatusCode,
    headers: &http::HeaderMap,
) -> Option<Duration> {
    if !matches!(status.as_u16(), 429 | 503) {
        return None;
    }
    let raw = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match raw.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
            (at.with_timezone(&Utc) - Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// What the token endpoint's HTTP answer said besides its body.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
}

pub(super) fn taken(seen: &std::sync::Mutex<Option<Answer>>) -> Option<Answer> {
    seen.lock().ok().and_then(|mut s| s.take())
}

pub(super) fn token_set(
    p: &Provider,
    answer: TokenAnswer,
    http: Option<Answer>,
) -> Result<TokenSet, ProviderError> {
    let retry = http.and_then(|a| a.retry_after);
    // 429 and 5xx are transient whatever error code the body carries.
    let overloaded = http.is_some_and(|a| a.status == 429 || a.status >= 500);
    let res = answer.map_err(|e| match e {
        RequestTokenError::ServerResponse(_) if overloaded => ProviderError::Transient {
            provider: p.name.clone(),
            reason: format!(
                "the token endpoint answered {}",
                http.map_or(0, |a| a.status)
            ),
            retry_after: retry,
        },
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => ProviderError::InvalidGrant {
                provider: p.name.clone(),
            },
            BasicErrorResponseType::Extension(code)
                if matches!(code.as_str(), "temporarily_unavailable" | "server_error") =>
            {
                ProviderError::Transient {
                    provider: p.name.clone(),
                    reason: code.clone(),
                    retry_after: retry,
                }
            }
            other => ProviderError::Rejected {
                provider: p.name.clone(),
                code: other.to_string(),
            },
        },
        RequestTokenError::Request(e) => transient(p, &e),
        // An answer that is neither a token nor an OAuth error is most often a 5xx page.
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => ProviderError::Transient {
            provider: p.name.clone(),
            reason: "unreadable answer from the token endpoint".to_owned(),
            retry_after: retry,
        },
    })?;
    let expires_at = res
        .expires_in()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| Utc::now() + d);
    let scopes = res.scopes().map(|s| {
        s.iter()
            .flat_map(|x| {
                x.split(p.scope_separator.as_str())
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    Ok(TokenSet {
        access_token: SecretString::from(res.access_token().secret().clone()),
        refresh_token: res
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        expires_at,
        scopes,
    })
}
