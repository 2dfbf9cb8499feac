//! The request facts an audit entry carries: caller IP, user agent, request id.

use std::net::SocketAddr;

use app::RequestMeta;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};

use super::{context::RequestId, error::ApiError};

/// [`RequestMeta`] of the current request (never fails).
#[derive(Clone, Debug)]
pub struct Meta(pub RequestMeta);

/// Reads the meta from a request's parts.
#[must_use]
pub fn request_meta(parts: &Parts) -> RequestMeta {
    RequestMeta {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        // Bounded: a header is client-controlled and ends up in the audit log.
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
        request_id: parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.as_str().to_owned()),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(request_meta(parts)))
    }
}
