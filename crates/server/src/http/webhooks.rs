//! Webhooks in: Clerk (API.md "Webhooks in: Clerk"). The raw body is verified with the
//! Svix scheme (the `standardwebhooks` crate; ±5 min) against every configured secret
//! before anything parses it; then each `svix-id` is processed once.

use app::users::clerk::{ClerkEvent, WebhookOutcome};
use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, HeaderName, StatusCode},
};
use domain::ErrorCode;
use secrecy::ExposeSecret;
use serde::Serialize;
use standardwebhooks::Webhook;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::parse_json_unchecked,
    meta::Meta,
};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(clerk_webhook))
}

/// The answer to a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `processed`, `duplicate` or `ignored`.
    #[schema(example = "processed")]
    pub status: &'static str,
}

/// Svix header → the Standard Webhooks name the verifier reads.
const HEADERS: [(&str, &str); 3] = [
    ("svix-id", standardwebhooks::HEADER_WEBHOOK_ID),
    ("svix-timestamp", standardwebhooks::HEADER_WEBHOOK_TIMESTAMP),
    ("svix-signature", standardwebhooks::HEADER_WEBHOOK_SIGNATURE),
];

fn invalid_signature(detail: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature).detail(detail)
}

/// Verifies `body` against the Svix headers with any configured secret; returns the
/// `svix-id`.
fn verify(
    secrets: &[secrecy::SecretString],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let mut mapped = HeaderMap::new();
    for (svix, standard) in HEADERS {
        // Standard Webhooks names are accepted as well (same scheme, unbranded).
        let value = headers
            .get(svix)
            .or_else(|| headers.get(standard))
            .ok_or_else(|| {
                invalid_signature("svix-id, svix-timestamp and svix-signature are required")
            })?;
        mapped.insert(HeaderName::from_static(standard), value.clone());
    }
    let mut verified = false;
    for secret in secrets {
        match Webhook::new(secret.expose_secret()) {
            Ok(wh) => {
                if wh.verify(body, &mapped).is_ok() {
                    verified = true;
                    break;
                }
            }
            // Never log the secret itself; config validation should have caught this.
            Err(_) => tracing::warn!("a configured Clerk webhook secret is not valid base64"),
        }
    }
    if !verified {
        return Err(invalid_signature(
            "the signature does not verify with any configured secret, or the timestamp is more than 5 minutes off",
        ));
    }
    let id = mapped
        .get(standardwebhooks::HEADER_WEBHOOK_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if id.is_empty() || id.len() > 255 {
        return Err(
            ApiError::new(ErrorCode::InvalidRequest).detail("svix-id must be 1 to 255 characters")
        );
    }
    Ok(id.to_owned())
}

/// Clerk user and session events, verified with the Svix scheme.
#[utoipa::path(post, path = "/webhooks/clerk", tag = "webhooks",
    request_body(content = Object, description = "A Clerk event (`type`, `data`), signed with `svix-id`, `svix-timestamp`, `svix-signature`"),
    responses(
        (status = 200, description = "processed, duplicate (this svix-id was handled before) or ignored (unhandled type)", body = WebhookAnswer),
        (status = 400, description = "Verified but malformed event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid signature, or timestamp outside ±5 min", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage failed: the sender retries", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No webhook secret configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn clerk_webhook(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let secrets = &state.config().clerk.webhook_secrets;
    if secrets.is_empty() {
        // Unsigned events are never accepted: without a secret the endpoint is off.
        return Err(ApiError::new(ErrorCode::ServiceUnavailable)
            .detail("Clerk webhooks are not configured: set CLERK_WEBHOOK_SECRET"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge)
                .detail("the request body is larger than the server accepts")
        } else {
            ApiError::new(ErrorCode::InvalidRequest).detail("the request body could not be read")
        }
    })?;
    let svix_id = verify(secrets, &headers, &body).inspect_err(|_| {
        // Unverified: its type is not read, so it is counted as `other`.
        app::metrics::clerk_webhook("", "invalid_signature");
    })?;
    // Clerk's metadata is free-form and never stored: the use case checks the fields it
    // reads (no control characters, bounded), naming them as `data.<field>`.
    let event: ClerkEvent = parse_json_unchecked(&body)?;
    let outcome: WebhookOutcome = state.app().clerk_webhook(meta, &svix_id, event).await?;
    Ok(Json(WebhookAnswer {
        status: outcome.as_str(),
    }))
}
