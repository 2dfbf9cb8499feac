//! The internal service API (API.md "Internal service API"): back-end services with a
//! service key get a user's valid provider token, force a refresh, read a user, and read
//! integration stats. Every token handed out is audited (`token.accessed`). Callers should
//! not cache a token longer than 5 minutes: the service refreshes ahead of expiry.

use app::{
    tokens::{IssuedToken, handout::TokenAsk, stats::IntegrationStats},
    users::UserKey,
};
use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use domain::{
    ValidationErrors,
    preferences::ProviderName,
    text::{Scopes, Text},
    user::UserRef,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::Json as Body,
    openapi::AdminRef,
    user_json::UserResource,
};
use crate::auth::{
    extract::{IntegrationsRead, Service, TokensRead, TokensRefresh, UsersRead},
    owned_user::ServiceTarget,
};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_token))
        .routes(routes!(refresh_token))
        .routes(routes!(internal_user))
        .routes(routes!(integration_stats))
}

/// The largest `min_validity_seconds` (a day).
const MAX_MIN_VALIDITY: u32 = 86_400;

/// `POST /internal/tokens/get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenGetBody {
    /// UUID or Clerk user id.
    pub user_id: Text<128>,
    /// A provider of `GET /providers`.
    pub provider: ProviderName,
    /// Which of the user's accounts with the provider: its `account_id` as in the
    /// integration resource. The default account (the first connected) when absent; an
    /// unknown one: 404 `not_found`.
    #[schema(value_type = Option<String>, max_length = 256, example = "109876543210987654321")]
    pub account_id: Option<Text<256>>,
    /// Scopes the token must carry (at most 50); 403 `insufficient_scope` lists the
    /// missing ones.
    #[serde(default)]
    pub scopes: Scopes,
    /// Refresh first when the token expires within this many seconds (default 300).
    pub min_validity_seconds: Option<u32>,
}

/// `POST /internal/tokens/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRefreshBody {
    /// UUID or Clerk user id.
    pub user_id: Text<128>,
    /// A provider of `GET /providers`.
    pub provider: ProviderName,
    /// As in `POST /internal/tokens/get`: the default account when absent.
    #[schema(value_type = Option<String>, max_length = 256, example = "109876543210987654321")]
    pub account_id: Option<Text<256>>,
}

/// A provider access token. Do not cache it longer than 5 minutes.
#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub provider: String,
    /// The provider's account the token belongs to (as in the integration resource).
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    /// Whether this call refreshed the token.
    pub refreshed: bool,
}

impl From<IssuedToken> for TokenAnswer {
    fn from(t: IssuedToken) -> Self {
        Self {
            access_token: t.access_token.expose_secret().to_owned(),
            token_type: t.token_type,
            expires_at: t.expires_at,
            scopes: t.scopes,
            provider: t.provider,
            account_id: t.account_id,
            account_email: t.account_email,
            refreshed: t.refreshed,
        }
    }
}

/// Integration counts and refresh health.
#[derive(Serialize, ToSchema)]
pub struct StatsAnswer {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub stats: serde_json::Value,
}

/// The user a body's `user_id` names (not yet looked up).
fn user_key(raw: &str) -> Result<UserKey, ApiError> {
    let r =
        UserRef::parse(raw).map_err(|m| ApiError::from(ValidationErrors::single("user_id", m)))?;
    UserKey::from_ref(r, None).ok_or_else(|| {
        ApiError::from(ValidationErrors::single(
            "user_id",
            "must be a UUID or a Clerk user id (`me` names no one here)",
        ))
    })
}

/// A valid access token for the user's provider, refreshed first when it expires within
/// `min_validity_seconds`.
#[utoipa::path(post, path = "/internal/tokens/get", tag = "internal",
    request_body = TokenGetBody, security(("service_key" = [])),
    responses(
        (status = 200, description = "The token", body = TokenAnswer),
        (status = 403, description = "No `tokens:read`; the provider or scopes are outside the key's limits (`forbidden`); or the token lacks scopes (`insufficient_scope` with `missing_scopes`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown user, no connected integration, or no such `account_id`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reauthorization_required`: the user must reconnect", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider is failing and the token has expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Service<TokensRead>,
    Body(body): Body<TokenGetBody>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let min = body.min_validity_seconds.unwrap_or(300);
    if min > MAX_MIN_VALIDITY {
        return Err(ValidationErrors::single(
            "min_validity_seconds",
            format!("must be at most {MAX_MIN_VALIDITY}"),
        )
        .into());
    }
    let key = user_key(body.user_id.as_str())?;
    let ask = TokenAsk {
        provider: body.provider.as_str().to_owned(),
        account_id: body.account_id.map(Text::into_string),
        scopes: body.scopes.into_strings(),
        min_validity: chrono::Duration::seconds(i64::from(min)),
        force: false,
    };
    let token = state.app().get_token(&caller.service, &key, ask).await?;
    Ok(Json(token.into()))
}

/// Refreshes now and returns the new token.
#[utoipa::path(post, path = "/internal/tokens/refresh", tag = "internal",
    request_body = TokenRefreshBody, security(("service_key" = [])),
    responses(
        (status = 200, description = "The refreshed token", body = TokenAnswer),
        (status = 403, description = "No `tokens:refresh`, or the provider or the token's scopes are outside the key's limits (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown user, no connected integration, or no such `account_id`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reauthorization_required`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider is failing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh_token(
    State(state): State<AppState>,
    caller: Service<TokensRefresh>,
    Body(body): Body<TokenRefreshBody>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let key = user_key(body.user_id.as_str())?;
    let ask = TokenAsk {
        provider: body.provider.as_str().to_owned(),
        account_id: body.account_id.map(Text::into_string),
        scopes: Vec::new(),
        min_validity: chrono::Duration::zero(),
        force: true,
    };
    let token = state
        .app()
        .refresh_token(&caller.service, &key, ask)
        .await?;
    Ok(Json(token.into()))
}

/// The user resource, for services (`users:read`).
#[utoipa::path(get, path = "/internal/users/{user_ref}", tag = "internal",
    params(AdminRef),
    security(("service_key" = [])),
    responses(
        (status = 200, description = "The user", body = UserResource),
        (status = 404, description = "Unknown or deleted user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn internal_user(target: ServiceTarget<UsersRead>) -> Json<UserResource> {
    Json(target.user.into())
}

/// Integrations by provider and status, and the refresh success rate over 24 hours.
#[utoipa::path(get, path = "/internal/integrations/stats", tag = "internal",
    security(("service_key" = [])),
    responses((status = 200, description = "Counts", body = StatsAnswer)))]
pub async fn integration_stats(
    State(state): State<AppState>,
    caller: Service<IntegrationsRead>,
) -> Result<Json<IntegrationStats>, ApiError> {
    Ok(Json(state.app().integration_stats(&caller.service).await?))
}
