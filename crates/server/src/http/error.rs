//! Errors as RFC 9457 problem documents. A handler or extractor returns an [`ApiError`];
//! it travels in the response's extensions and the request-context middleware renders it,
//! adding what only the request knows (`instance`, `request_id`). Non-problem error
//! responses from the framework (404, 405, 413, timeouts, panics) are rendered there too,
//! so every non-2xx answer has the same shape.

use std::{borrow::Cow, sync::Arc};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::{ErrorCode, FieldError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

/// An error on its way to becoming a problem document.
#[derive(Clone, Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: Option<Cow<'static, str>>,
    errors: Vec<FieldError>,
    extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// Logged with the request id, never sent.
    internal: Option<String>,
}

impl ApiError {
    /// An error of this code with the table's title and no detail.
    #[must_use]
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            detail: None,
            errors: Vec::new(),
            extra: None,
            internal: None,
        }
    }

    /// Adds a human-readable explanation for the client.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extension member (e.g. `missing_scopes`).
    #[must_use]
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }

    /// 400 `invalid_request` naming one bad field of a query or path: `errors` carries it
    /// as a 422 would, so clients read both the same way.
    #[must_use]
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let e = FieldError::new(field, message);
        Self {
            detail: Some(format!("{} {}", e.field, e.message).into()),
            errors: vec![e],
            ..Self::new(ErrorCode::InvalidRequest)
        }
    }

    /// A 500 whose cause is logged (with the request id) but never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(cause.to_string()),
            ..Self::new(ErrorCode::InternalError)
        }
    }

    /// The error's code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The internal cause, for the log line.
    #[must_use]
    pub fn internal_cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(v: ValidationErrors) -> Self {
        Self {
            detail: Some(v.summary().into()),
            errors: v.0,
            ..Self::new(ErrorCode::ValidationError)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = status.into_response();
        res.extensions_mut().insert(Arc::new(self));
        res
    }
}

/// The problem document as sent (also the OpenAPI schema of every error answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem<'a> {
    /// Stable error code, e.g. `validation_error`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Short summary of the error type.
    pub title: &'a str,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// The request path.
    pub instance: &'a str,
    /// The request id, also in the `x-request-id` header and the server's log line.
    pub request_id: &'a str,
    /// When the error happened (RFC 3339, UTC).
    pub timestamp: String,
    /// Invalid fields, for `validation_error` (bodies) and `invalid_request` (queries,
    /// paths).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub errors: &'a [FieldError],
    /// Extension members of some types (e.g. `missing_scopes`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// One invalid field.
#[derive(ToSchema)]
#[allow(dead_code)] // Schema only: the serialized type is `domain::FieldError`.
pub struct FieldErrorSchema {
    /// Path of the field, e.g. `ui.theme`.
    field: String,
    /// What is wrong with it.
    message: String,
}

/// The code a bare error status maps to, for responses not built from an [`ApiError`].
pub(crate) fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        409 => ErrorCode::Conflict,
        412 => ErrorCode::PreconditionFailed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::ValidationError,
        429 => ErrorCode::RateLimited,
        502 => ErrorCode::ProviderError,
        // Only the provider proxy answers 504 (its provider gave no answer in time).
        504 => ErrorCode::ProviderTimeout,
        503 | 408 => ErrorCode::ServiceUnavailable,
        400..=499 => ErrorCode::InvalidRequest,
        _ => ErrorCode::InternalError,
    }
}

/// `Retry-After` of a 503: a database that comes back is served again within about a
/// second (docs/reliability.md), so a short wait is enough for a retry to have a chance.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 2;

/// Renders the problem body for `err` (or a bare status) into `res`.
pub(crate) fn render(res: &mut Response, err: Option<&ApiError>, instance: &str, request_id: &str) {
    let fallback;
    let err = if let Some(e) = err {
        e
    } else {
        let code = code_for_status(res.status());
        fallback = ApiError::new(code).detail(default_detail(res.status()));
        &fallback
    };
    let problem = Problem {
        kind: err.code.as_str(),
        title: err.code.title(),
        status: err.code.status(),
        detail: err.detail.as_deref(),
        instance,
        request_id,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        errors: &err.errors,
        extra: err.extra.as_ref(),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    // A status changed by the code (e.g. 408 → 503) must follow the body.
    *res.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // RFC 9110 §11.6.1: every 401 names the scheme, whichever extractor refused.
    if problem.status == 401 && !res.headers().contains_key(header::WWW_AUTHENTICATE) {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"user-service\""),
        );
    }
    // API.md: a dependency that is down (or a request cut off, or a draining replica) is a
    // 503 the client may retry; it says when, unless the layer that refused said already.
    if problem.status == 503 && !res.headers().contains_key(header::RETRY_AFTER) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    res.headers_mut().remove(header::CONTENT_LENGTH);
    *res.body_mut() = axum::body::Body::from(body);
}

fn default_detail(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "no route matches this path",
        405 => "this route does not accept this method",
        408 | 503 | 504 => "the request did not complete in time",
        413 => "the request body is larger than the server accepts",
        _ => status.canonical_reason().unwrap_or("error"),
    }
}

#[cfg(test)]
impl ApiError {
    /// (field, message) pairs, for assertions.
    pub(crate) fn errors_for_test(&self) -> Vec<(String, String)> {
        self.errors
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect()
    }
}

impl From<app::AppError> for ApiError {
    fn from(e: app::AppError) -> Self {
        use app::AppError as E;
        match e {
            E::Validation(v) => v.into(),
            // The cause is logged with the request id; the client learns only that it may retry.
            E::Store(_) if e.is_unavailable() => Self {
                internal: Some(e.to_string()),
                ..Self::new(ErrorCode::ServiceUnavailable)
                    .detail("the database is not answering; retry later")
            },
            E::Store(_) | E::Internal(_) => Self::internal(&e),
            E::NotFound(what) => Self::new(ErrorCode::NotFound).detail(format!("{what} not found")),
            E::InsufficientScope(missing) => Self::new(ErrorCode::InsufficientScope)
                .detail(format!("the token lacks the scopes {}", missing.join(", ")))
                .with("missing_scopes", serde_json::json!(missing)),
            other => {
                let code = other.code();
                Self::new(code).detail(other.to_string())
            }
        }
    }
}
