//! Integrations (API.md "Integrations (OAuth)"): list, start an authorization, complete
//! it, disconnect. Answers never hold a token.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use domain::{
    ErrorCode,
    integration::{Account, Integration, IntegrationStatus},
    preferences::ProviderName,
    text::{Scopes, Text},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json as Body, OptionalJson, Path, Query},
    openapi::OwnerRef,
};
use crate::auth::owned_user::OwnedUser;

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations))
        .routes(routes!(authorize))
        .routes(routes!(complete, disconnect))
        .routes(routes!(refresh))
        .routes(routes!(diagnostics))
}

/// An integration: never a token. A user may connect a provider more than once, with
/// different accounts: each is an integration of its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationResource {
    /// The integration's id.
    pub id: uuid::Uuid,
    /// Whether this is the user's default account with the provider: the first connected
    /// that is not disconnected. Routes and token requests that name no `account_id` use it.
    pub default: bool,
    pub provider: String,
    pub status: IntegrationStatus,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub connected_at: Option<DateTime<Utc>>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    /// The last refresh or health error (an OAuth error code and where, never a token).
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<Integration> for IntegrationResource {
    fn from(i: Integration) -> Self {
        Self {
            id: i.id.as_uuid(),
            default: i.default,
            status: i.status,
            scopes: serde_json::from_value(i.scopes).unwrap_or_default(),
            provider: i.provider,
            account_id: i.account_id,
            account_email: i.account_email,
            connected_at: i.connected_at,
            expires_at: i.expires_at,
            last_refreshed_at: i.last_refreshed_at,
            last_checked_at: i.last_checked_at,
            last_error: i.last_error,
            updated_at: i.updated_at,
        }
    }
}

/// `{"items": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub items: Vec<IntegrationResource>,
}

/// Body of authorize; both fields optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    /// Where the provider sends the user back; defaults to `OAUTH_REDIRECT_URI` and must be
    /// one of `OAUTH_ALLOWED_REDIRECT_URIS`.
    pub redirect_uri: Option<Text<2048>>,
    /// Scopes to ask for (at most 50); the provider's defaults when absent.
    pub scopes: Option<Scopes>,
}

/// Where to send the user.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeAnswer {
    /// The provider's consent page with `state`, the PKCE challenge and offline access.
    pub authorization_url: String,
    /// Single use, bound to this user and provider; comes back with the code.
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// Body of complete.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// The authorization code from the callback (at most 4096 characters).
    pub code: Text<4096>,
    /// The state from the callback.
    pub state: Text<256>,
}

/// `?account_id=` of the provider-keyed routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountParams {
    /// Which of the user's accounts with the provider: its `account_id` as in the
    /// integration resource. The default account when absent; an unknown one: 404.
    #[param(value_type = Option<String>, max_length = 256, example = "109876543210987654321")]
    pub account_id: Option<Text<256>>,
}

impl AccountParams {
    fn account(self) -> Account {
        Account::from_option(self.account_id.map(Text::into_string))
    }
}

pub(super) fn provider_name(raw: &str) -> Result<ProviderName, ApiError> {
    raw.parse::<ProviderName>()
        .map_err(|_| ApiError::new(ErrorCode::NotFound).detail("provider not found"))
}

/// The user's integrations, by provider.
#[utoipa::path(get, path = "/users/{user_ref}/integrations", tag = "integrations",
    params(OwnerRef),
    responses(
        (status = 200, description = "The integrations", body = IntegrationList),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_integrations(
    State(state): State<AppState>,
    owned: OwnedUser,
) -> Result<Json<IntegrationList>, ApiError> {
    let items = state.app().list_integrations(&owned.owner).await?;
    Ok(Json(IntegrationList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Starts connecting a provider: the consent URL with a single-use state (10 minutes)
/// and a PKCE S256 challenge.
#[utoipa::path(post, path = "/users/{user_ref}/integrations/{provider}/authorize", tag = "integrations",
    params(OwnerRef,
        ("provider" = String, Path, description = "A provider of `GET /providers`")),
    request_body(content = AuthorizeBody, description = "Optional"),
    responses(
        (status = 200, description = "Where to send the user", body = AuthorizeAnswer),
        (status = 404, description = "Unknown provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Provider not configured on this deployment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Redirect URI not allowed, or bad scopes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn authorize(
    State(state): State<AppState>,
    owned: OwnedUser,
    Path((_, provider)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<AuthorizeBody>,
) -> Result<Json<AuthorizeAnswer>, ApiError> {
    let provider = provider_name(&provider)?;
    let start = state
        .app()
        .authorize_integration(
            &owned.owner,
            provider.as_str(),
            body.redirect_uri.as_ref().map(Text::as_str),
            body.scopes.map(Scopes::into_strings),
        )
        .await?;
    Ok(Json(AuthorizeAnswer {
        authorization_url: start.authorization_url.to_string(),
        state: start.state,
        expires_at: start.expires_at,
    }))
}

/// Completes the connection with the callback's code and state.
#[utoipa::path(post, path = "/users/{user_ref}/integrations/{provider}", tag = "integrations",
    params(OwnerRef,
        ("provider" = String, Path, description = "A provider of `GET /providers`")),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "The connected integration", body = IntegrationResource),
        (status = 400, description = "Reused, expired or foreign state", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused the code or failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn complete(
    State(state): State<AppState>,
    owned: OwnedUser,
    Path((_, provider)): Path<(String, String)>,
    Body(body): Body<CompleteBody>,
) -> Result<Json<IntegrationResource>, ApiError> {
    let provider = provider_name(&provider)?;
    let integration = state
        .app()
        .complete_integration(
            &owned.owner,
            provider.as_str(),
            body.code.as_str(),
            body.state.as_str(),
        )
        .await?;
    Ok(Json(integration.into()))
}

/// Disconnects: revokes at the provider where it supports revocation (best effort; the
/// outcome is in the audit entry), deletes the tokens, status `disconnected`.
#[utoipa::path(delete, path = "/users/{user_ref}/integrations/{provider}", tag = "integrations",
    params(OwnerRef,
        ("provider" = String, Path, description = "A provider of `GET /providers`"),
        AccountParams),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 404, description = "Never connected, or no such account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disconnect(
    State(state): State<AppState>,
    owned: OwnedUser,
    Path((_, provider)): Path<(String, String)>,
    Query(q): Query<AccountParams>,
) -> Result<StatusCode, ApiError> {
    let provider = provider_name(&provider)?;
    state
        .app()
        .disconnect_integration(&owned.owner, provider.as_str(), &q.account())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refreshes the tokens now; answers the integration (never a token).
#[utoipa::path(put, path = "/users/{user_ref}/integrations/{provider}/refresh", tag = "integrations",
    params(OwnerRef,
        ("provider" = String, Path, description = "A provider of `GET /providers`"),
        AccountParams),
    responses(
        (status = 200, description = "The integration after the refresh", body = IntegrationResource),
        (status = 404, description = "Not connected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reauthorization_required`: reconnect", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider is failing and the token has expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    owned: OwnedUser,
    Path((_, provider)): Path<(String, String)>,
    Query(q): Query<AccountParams>,
) -> Result<Json<IntegrationResource>, ApiError> {
    let provider = provider_name(&provider)?;
    let integration = state
        .app()
        .refresh_integration(&owned.owner, provider.as_str(), q.account())
        .await?;
    Ok(Json(integration.into()))
}

/// Token expiry, granted against default scopes, the last refresh attempts and their
/// errors, and a live call to the provider's user-info endpoint. Never a token.
#[utoipa::path(get, path = "/users/{user_ref}/integrations/{provider}/diagnostics", tag = "integrations",
    params(OwnerRef,
        ("provider" = String, Path, description = "A provider of `GET /providers`"),
        AccountParams),
    responses(
        (status = 200, description = "The diagnostics", body = Object),
        (status = 404, description = "Never connected", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn diagnostics(
    State(state): State<AppState>,
    owned: OwnedUser,
    Path((_, provider)): Path<(String, String)>,
    Query(q): Query<AccountParams>,
) -> Result<Json<app::tokens::diagnostics::Diagnostics>, ApiError> {
    let provider = provider_name(&provider)?;
    Ok(Json(
        state
            .app()
            .integration_diagnostics(&owned.owner, provider.as_str(), &q.account())
            .await?,
    ))
}
