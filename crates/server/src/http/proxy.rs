//! The provider proxy (`ANY /internal/proxy/{provider}/{path}`, docs/proxy.md): a service
//! with `tokens:read` calls the provider's API as the user `X-User-Id` names, the user's
//! token injected by us. This handler only takes the request apart (the raw path as
//! sent, the query, the headers, the body as a stream), calls [`app::App::proxy`] and
//! streams the provider's answer back. The answer keeps the provider's status and body:
//! it is marked [`ForwardedAnswer`] so the error rendering leaves a provider's 4xx or 5xx
//! as the provider sent it.

use app::{
    proxy::{ProxyBody, ProxyCall, REPLAY_LIMIT},
    users::UserKey,
};
use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header, header::HeaderName},
    response::{IntoResponse, Response},
};
use domain::{text::Text, user::UserRef};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
};
use crate::auth::extract::{Service, TokensRead};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(proxy))
}

/// The header naming the user whose token is used.
static USER_HEADER: HeaderName = HeaderName::from_static("x-user-id");
static ACCOUNT_HEADER: HeaderName = HeaderName::from_static("x-account-id");

/// Marks an answer that is the provider's own: not rendered as a problem.
#[derive(Clone, Copy, Debug)]
pub struct ForwardedAnswer;

/// The path prefix of the route, before the provider.
const PREFIX: &str = "/internal/proxy/";

/// Forwards the request to the provider's API (`{path}` under the catalog's API base URL,
/// with the query) with the user's access token as `Authorization: Bearer`. A provider 401
/// causes one refresh and one retry; `Retry-After` of a 429 or 503 passes through. The
/// caller's credentials and hop-by-hop headers are not forwarded, the provider's cookies
/// not returned. Bodies stream, up to `PROXY_MAX_BODY_BYTES`, within `PROXY_TIMEOUT_SECONDS`.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/internal/proxy/{provider}/{*path}", tag = "internal",
    params(
        ("provider" = String, Path, description = "A provider of `GET /providers`", example = "google"),
        ("path" = String, Path, description = "The path under the provider's API base URL, with any query string", example = "calendar/v3/users/me/calendarList"),
        ("X-User-Id" = String, Header, description = "UUID or Clerk user id of the user whose token is used", example = "user_2abcDEF9"),
        ("X-Account-Id" = Option<String>, Header, description = "Which of the user's accounts with the provider: its `account_id` as in the integration resource; the default account when absent. An unknown one: 404", example = "109876543210987654321"),
    ),
    security(("service_key" = [])),
    responses(
        (status = 200, description = "The provider's answer, status, headers and body as it sent them (any status)", content_type = "application/json", body = Object,
            example = json!({"items": [{"id": "primary", "summary": "ada@gmail.com"}]})),
        (status = 400, description = "No `X-User-Id`, or a path that would leave the provider's API (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `tokens:read`, or the provider or the token's scopes are outside the key's limits (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown provider, user or integration", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reauthorization_required`: the user must reconnect", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The request body is larger than `PROXY_MAX_BODY_BYTES`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`provider_unreachable`: the provider's API gave no answer", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "`provider_timeout`: the provider's API did not answer in time", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn proxy(
    State(state): State<AppState>,
    caller: Service<TokensRead>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (provider, path) = split_path(parts.uri.path())?;
    let user = user_of(&parts.headers)?;
    let account_id = account_of(&parts.headers)?;
    let limit = state.config().proxy.max_body_bytes;
    let body = ProxyBody::read(body, REPLAY_LIMIT, limit).await?;
    let call = ProxyCall {
        provider,
        user,
        account_id,
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let answer = state.app().proxy(&caller.service, call).await?;
    let mut res = (answer.status, Body::new(answer.body)).into_response();
    *res.headers_mut() = answer.headers;
    // The user's data: no shared cache may keep it, whatever the provider allowed.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(ForwardedAnswer);
    Ok(res)
}

/// (provider, path as sent) of the request path.
fn split_path(raw: &str) -> Result<(String, String), ApiError> {
    let not_found = || ApiError::new(domain::ErrorCode::NotFound).detail("provider not found");
    let rest = raw.strip_prefix(PREFIX).ok_or_else(not_found)?;
    let (provider, path) = rest.split_once('/').ok_or_else(not_found)?;
    let plain = !provider.is_empty()
        && provider.len() <= 64
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if plain {
        Ok((provider.to_owned(), path.to_owned()))
    } else {
        Err(not_found())
    }
}

/// The user `X-User-Id` names (not yet looked up).
fn user_of(headers: &HeaderMap) -> Result<UserKey, ApiError> {
    let field = "X-User-Id";
    let raw = headers
        .get(&USER_HEADER)
        .ok_or_else(|| ApiError::invalid_field(field, "is required: the user whose token is used"))?
        .to_str()
        .map_err(|_| ApiError::invalid_field(field, "must be a UUID or a Clerk user id"))?;
    let parsed = UserRef::parse(raw.trim()).map_err(|m| ApiError::invalid_field(field, m))?;
    UserKey::from_ref(parsed, None).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            "must be a UUID or a Clerk user id (`me` names no one here)",
        )
    })
}

/// The provider account `X-Account-Id` names, if any (checked as the token routes'
/// `account_id`).
fn account_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let field = "X-Account-Id";
    let Some(raw) = headers.get(&ACCOUNT_HEADER) else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::invalid_field(field, "must be a provider account id"))?;
    Text::<256>::parse(raw.trim())
        .map(|a| Some(a.into_string()))
        .map_err(|m| ApiError::invalid_field(field, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_split_as_sent() {
        let (p, rest) = split_path("/internal/proxy/google/a/%2e%2e/b").expect("split");
        assert_eq!((p.as_str(), rest.as_str()), ("google", "a/%2e%2e/b"));
        assert!(split_path("/internal/proxy/Goo%67le/x").is_err());
        assert!(split_path("/internal/proxy/google").is_err());
    }
}
