//! The hosted connect page (docs/connect-page.md; API.md "Provider proxy and connect
//! page"): the owner asks for a connect session (JSON), the user's browser opens the page
//! with it (no auth header: the session is the credential) and is sent to the provider,
//! which sends it back to the callback here. The two browser routes answer HTML pages
//! served from the binary, whose one inline script tells the opener the outcome with
//! `postMessage` to `CONNECT_ORIGIN` only and closes the pop-up; their CSP allows exactly
//! that script and style by hash (docs/security.md "Browser headers").

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::text::{Scopes, Text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    context::BrowserPage,
    error::{ApiError, Problem},
    extract::{Json as Body, Path, Query},
    integrations::provider_name,
    meta::Meta,
    openapi::OwnerRef,
};
use crate::auth::owned_user::OwnedUser;
use app::integrations::connect::{PageStart, Refused};

const PAGE: &str = include_str!("connect/page.html");
const STYLE: &str = include_str!("connect/page.css");
const SCRIPT: &str = include_str!("connect/page.js");
/// The `type` of every message the page posts, so an opener can tell ours from others.
const MESSAGE_TYPE: &str = "user-service:connect";

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connect_session))
        .routes(routes!(connect_page))
        .routes(routes!(connect_callback))
}

/// Body of a connect-session request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionBody {
    /// A provider of `GET /providers`.
    pub provider: Text<64>,
    /// Scopes to ask for (at most 50); the provider's defaults when absent.
    pub scopes: Option<Scopes>,
}

/// Where the front end sends the user: open `url` in a pop-up. No `Debug`: the URL holds
/// the session secret.
#[derive(Serialize, ToSchema)]
pub struct ConnectSessionAnswer {
    /// The hosted connect page with the single-use session in its query.
    pub url: String,
    /// After this the page refuses the session (410).
    pub expires_at: DateTime<Utc>,
}

/// Query of the connect page (no `Debug`: it holds the session secret).
#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// The connect session's secret.
    pub session: Option<String>,
}

/// Query of the callback, as the provider sends it (no `Debug`: it holds the code).
#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's OAuth error code (e.g. `access_denied`).
    pub error: Option<String>,
}

/// A short-lived (10 minutes), single-use URL of the hosted connect page for `provider`.
#[utoipa::path(post, path = "/users/{user_ref}/connect-sessions", tag = "integrations",
    params(OwnerRef),
    request_body = ConnectSessionBody,
    responses(
        (status = 201, description = "The connect page's URL", body = ConnectSessionAnswer),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Provider or connect page (PUBLIC_URL) not configured on this deployment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad scopes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_connect_session(
    State(state): State<AppState>,
    owned: OwnedUser,
    Body(body): Body<ConnectSessionBody>,
) -> Result<(StatusCode, Json<ConnectSessionAnswer>), ApiError> {
    let provider = provider_name(body.provider.as_str())?;
    let session = state
        .app()
        .create_connect_session(
            &owned.owner,
            provider.as_str(),
            body.scopes.map(Scopes::into_strings),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectSessionAnswer {
            url: session.url.to_string(),
            expires_at: session.expires_at,
        }),
    ))
}

/// The hosted connect page: uses the session up and sends the browser (302) to the
/// provider's consent page. An unknown (400), expired or used (410) session gets a page
/// saying so, and starts nothing.
#[utoipa::path(get, path = "/connect/{provider}", tag = "integrations",
    params(("provider" = String, Path, description = "A provider of `GET /providers`"), PageQuery),
    security(()),
    responses(
        (status = 302, description = "To the provider's consent page"),
        (status = 400, description = "Unknown session: an HTML page", body = String, content_type = "text/html"),
        (status = 410, description = "Expired or used session: an HTML page", body = String, content_type = "text/html"),
    ))]
pub async fn connect_page(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    if let Err(e) = provider_name(&provider) {
        return failure(&state, &provider, &e);
    }
    let session = q.session.filter(|s| !s.is_empty() && s.len() <= 256);
    let started = match session {
        None => Ok(PageStart::Refused(Refused::Unknown)),
        Some(s) => state.app().open_connect_page(&provider, &s).await,
    };
    match started {
        Ok(PageStart::Redirect(url)) => match HeaderValue::from_str(url.as_str()) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => failure(&state, &provider, &ApiError::internal("authorization URL")),
        },
        Ok(PageStart::Refused(r)) => refused(&state, &provider, r),
        Err(e) => failure(&state, &provider, &e.into()),
    }
}

/// Where the provider sends the browser back: completes the connection as
/// `POST /users/{user_ref}/integrations/{provider}` does, then a page that tells the
/// opener (`postMessage` to `CONNECT_ORIGIN`) and closes.
#[utoipa::path(get, path = "/connect/{provider}/callback", tag = "integrations",
    params(("provider" = String, Path, description = "A provider of `GET /providers`"), CallbackQuery),
    security(()),
    responses(
        (status = 200, description = "Connected: an HTML page", body = String, content_type = "text/html"),
        (status = 400, description = "Refused at the provider, or a reused, expired or foreign state: an HTML page", body = String, content_type = "text/html"),
        (status = 502, description = "The provider failed: an HTML page", body = String, content_type = "text/html"),
    ))]
pub async fn connect_callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
    Meta(meta): Meta,
) -> Response {
    if let Err(e) = provider_name(&provider) {
        return failure(&state, &provider, &e);
    }
    if let Some(error) = q.error {
        return provider_refused(&state, &provider, &error);
    }
    let (Some(code), Some(oauth_state)) = (q.code, q.state) else {
        let e = ApiError::new(domain::ErrorCode::InvalidRequest).detail("code and state required");
        return failure(&state, &provider, &e);
    };
    match state
        .app()
        .finish_connect_page(&provider, &code, &oauth_state, meta)
        .await
    {
        Ok(_) => page(
            &state,
            StatusCode::OK,
            "Connected",
            &format!("Your {provider} account is connected. You can close this window."),
            json!({"type": MESSAGE_TYPE, "provider": provider, "status": "connected"}),
        ),
        Err(e) => failure(&state, &provider, &e.into()),
    }
}

fn refused(state: &AppState, provider: &str, r: Refused) -> Response {
    let (status, error, message) = match r {
        Refused::Unknown => (
            StatusCode::BAD_REQUEST,
            "session_unknown",
            "This connect link is not valid.",
        ),
        Refused::Expired => (
            StatusCode::GONE,
            "session_expired",
            "This connect link has expired.",
        ),
        Refused::Used => (
            StatusCode::GONE,
            "session_used",
            "This connect link has already been used.",
        ),
    };
    let message = format!("{message} Close this window and start again from the application.");
    page(
        state,
        status,
        "Not connected",
        &message,
        error_outcome(provider, error),
    )
}

/// The provider's own refusal (`?error=access_denied`): its code when it looks like one.
fn provider_refused(state: &AppState, provider: &str, error: &str) -> Response {
    let looks_like_code = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let code = if looks_like_code {
        error
    } else {
        "provider_error"
    };
    let message =
        format!("{provider} did not grant access ({code}). Close this window and try again.");
    page(
        state,
        StatusCode::BAD_REQUEST,
        "Not connected",
        &message,
        error_outcome(provider, code),
    )
}

/// An error from the use case: its stable code and title, never its detail (the internal
/// cause, if any, is logged here once).
fn failure(state: &AppState, provider: &str, e: &ApiError) -> Response {
    if let Some(cause) = e.internal_cause() {
        tracing::error!(error = cause, "connect page failed");
    }
    let code = e.code();
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!(
        "{provider} could not be connected: {}. Close this window and try again.",
        code.title()
    );
    page(
        state,
        status,
        "Not connected",
        &message,
        error_outcome(provider, code.as_str()),
    )
}

fn error_outcome(provider: &str, error: &str) -> Value {
    json!({"type": MESSAGE_TYPE, "provider": provider, "status": "error", "error": error})
}

/// The page, with its CSP naming the hashes of exactly its script and style.
fn page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    outcome: Value,
) -> Response {
    let origin = state.config().http.connect_origin.as_deref();
    let script = SCRIPT
        .replace("__OUTCOME__", &script_json(&outcome))
        .replace("__ORIGIN__", &script_json(&json!(origin)));
    let outcome_status = outcome["status"].as_str().unwrap_or("error");
    let html = PAGE
        .replace("{{title}}", &escape(title))
        .replace("{{status}}", &escape(outcome_status))
        .replace("{{message}}", &escape(message))
        .replace("{{style}}", STYLE)
        .replace("{{script}}", &script);
    let csp = format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
        sha256_source(&script),
        sha256_source(STYLE)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res.extensions_mut().insert(BrowserPage);
    res
}

/// JSON safe inside `<script>`: no `<` (so no `</script>`), no `>` or `&`.
fn script_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSP source allowing exactly this inline text.
fn sha256_source(text: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let s = script_json(&json!({"error": "</script><script>alert(1)</script>"}));
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
    }

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
