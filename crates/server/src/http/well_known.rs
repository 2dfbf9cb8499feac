//! `/.well-known/jwks.json`: the public key of local development auth, so tools (and the
//! front end in development) can verify the tokens this service signs. Absent (404) when
//! Clerk is configured: Clerk publishes its own JWKS.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use domain::ErrorCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// The JSON Web Key Set of local development auth (one RS256 key).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses(
        (status = 200, description = "The development signing key's JWKS (`{\"keys\": [...]}`)", body = Object),
        (status = 404, description = "Not in local development mode (Clerk is configured)", body = super::error::Problem),
    ))]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let key = state.auth().dev_key().ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound)
            .detail("no local development auth: tokens come from Clerk, which publishes the JWKS")
    })?;
    let mut res = Json(key.jwks()).into_response();
    // Public key material: caching is fine and spares the verifiers.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}
