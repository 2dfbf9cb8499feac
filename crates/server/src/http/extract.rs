//! Our own extractors, so malformed input gets our problem format: a malformed body is
//! 400 `invalid_request`; a well-formed body with an unknown, missing or invalid field is
//! 422 `validation_error` naming the field path; a body that is not JSON is 415. Every
//! text passes the edge check of [`super::input`] first (no control characters, bounded
//! lengths), so no handler can forget it.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, RawPathParams, Request,
        rejection::{BytesRejection, PathRejection},
    },
    http::{header, request::Parts},
};
use domain::{ErrorCode, ValidationErrors};
use serde::de::DeserializeOwned;

use super::{error::ApiError, input};

/// A JSON body (`application/json`, or any `application/*+json` such as merge-patch).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
                .detail("the body must be JSON (Content-Type: application/json)"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(Json)
    }
}

/// An optional JSON body: no body at all is `T::default()`; a body is read as [`Json`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        let is_json_type = is_json(req.headers().get(header::CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        if has_type && !is_json_type {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
                .detail("the body must be JSON (Content-Type: application/json)"));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Parses a JSON document into `T` after the edge check of every string, key and array in
/// it, classifying failures as 400 or 422.
///
/// # Errors
/// 400 for malformed JSON, 422 naming the field for a shape or value error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_value(bytes)?;
    input::check_json(&value)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (field, message) = field_and_message(&e.path().to_string(), &e.inner().to_string());
        ApiError::from(ValidationErrors::single(field, message))
    })
}

/// [`parse_json`] without the edge check, for a document whose reader checks the fields it
/// uses itself and ignores (never stores) the rest: Clerk's events carry free-form metadata.
///
/// # Errors
/// As [`parse_json`].
pub fn parse_json_unchecked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_value(bytes)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (field, message) = field_and_message(&e.path().to_string(), &e.inner().to_string());
        ApiError::from(ValidationErrors::single(field, message))
    })
}

fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidRequest).detail("the request body is empty"));
    }
    let malformed = |e: &serde_json::Error| {
        ApiError::new(ErrorCode::InvalidRequest).detail(format!(
            "malformed JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde::Deserialize::deserialize(&mut de).map_err(|e| malformed(&e))?;
    // Trailing characters after the document make it malformed.
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// Turns serde's message into a field path and a message that never echoes the value sent
/// (a value may be a secret the caller pasted in the wrong place).
fn field_and_message(path: &str, raw: &str) -> (String, String) {
    // serde appends " at line N column M"; the field path says where already.
    let msg = raw.rsplit_once(" at line ").map_or(raw, |(m, _)| m);
    let base = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    // The path may already end with the field's name (unknown fields) or not (missing ones).
    let join = |name: &str| {
        if base.is_empty() {
            name.to_owned()
        } else if base == name || base.ends_with(&format!(".{name}")) {
            base.clone()
        } else {
            format!("{base}.{name}")
        }
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return (join(name), "is not a known field".to_owned());
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return (join(name), "is required".to_owned());
    }
    (field_or_body(&base), domain::redacted_serde_message(msg))
}

fn field_or_body(base: &str) -> String {
    if base.is_empty() {
        "body".to_owned()
    } else {
        base.to_owned()
    }
}

fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge)
            .detail("the request body is larger than the server accepts")
    } else {
        ApiError::new(ErrorCode::InvalidRequest).detail("the request body could not be read")
    }
}

/// A query string deserialized into `T` after the edge check; a bad one is 400
/// `invalid_request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        input::check_query(query)?;
        serde_urlencoded::from_str(query).map(Query).map_err(|e| {
            ApiError::new(ErrorCode::InvalidRequest).detail(format!("invalid query string: {e}"))
        })
    }
}

/// Path parameters deserialized into `T` after the edge check; a bad one is 400
/// `invalid_request` naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let names = check_path(parts, state).await?;
        #[allow(clippy::disallowed_types)] // The one place that wraps axum's extractor.
        let path = axum::extract::Path::<T>::from_request_parts(parts, state).await;
        path.map(|p| Self(p.0)).map_err(|e| path_error(&e, &names))
    }
}

/// The edge check of the path parameters, for extractors that read them raw; returns
/// their names.
///
/// # Errors
/// 400 naming the first bad parameter, or for a path that is not UTF-8.
pub async fn check_path<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<Vec<String>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::invalid_field("path", "must be UTF-8 text"))?;
    input::check_path(&params)?;
    Ok(params.iter().map(|(k, _)| k.to_owned()).collect())
}

fn path_error(e: &PathRejection, names: &[String]) -> ApiError {
    use axum::extract::path::ErrorKind;
    if let PathRejection::FailedToDeserializePathParams(e) = e {
        match e.kind() {
            // A single parameter (`Path<i64>`) is reported without its name.
            ErrorKind::ParseError { expected_type, .. } if names.len() == 1 => {
                let what = if expected_type.starts_with('i') || expected_type.starts_with('u') {
                    "must be an integer"
                } else {
                    "is not valid"
                };
                return ApiError::invalid_field(&names[0], what);
            }
            ErrorKind::ParseErrorAtKey {
                key, expected_type, ..
            } => {
                let what = if expected_type.starts_with('i') || expected_type.starts_with('u') {
                    "must be an integer"
                } else {
                    "is not valid"
                };
                return ApiError::invalid_field(key, what);
            }
            ErrorKind::InvalidUtf8InPathParam { key } => {
                return ApiError::invalid_field(key, "must be UTF-8 text");
            }
            _ => {}
        }
    }
    ApiError::new(ErrorCode::InvalidRequest).detail("the path is not valid")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        theme: Theme,
        n: u8,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Theme {
        Light,
        Dark,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        ui: Inner,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<Outer>(body.as_bytes()).expect_err("must fail")
    }

    #[test]
    fn malformed_is_400_and_shape_errors_are_422_with_paths() {
        assert_eq!(err("{").code(), ErrorCode::InvalidRequest);
        assert_eq!(err("").code(), ErrorCode::InvalidRequest);
        assert_eq!(
            err(r#"{"ui":{"theme":"light","n":1}} x"#).code(),
            ErrorCode::InvalidRequest
        );
        let e = err(r#"{"ui":{"theme":"light","n":1,"extra":1}}"#);
        assert_eq!(e.code(), ErrorCode::ValidationError);
        assert_eq!(
            e.errors_for_test(),
            vec![("ui.extra".to_owned(), "is not a known field".to_owned())]
        );
        let e = err(r#"{"ui":{"theme":"neon","n":1}}"#);
        assert_eq!(e.errors_for_test()[0].0, "ui.theme");
        let e = err(r#"{"ui":{"theme":"light","n":"sk-secret-value"}}"#);
        assert_eq!(e.errors_for_test()[0].0, "ui.n");
        assert!(
            !format!("{e:?}").contains("sk-secret-value"),
            "value echoed: {e:?}"
        );
        let e = err(r#"{"ui":{"n":1}}"#);
        assert_eq!(
            e.errors_for_test(),
            vec![("ui.theme".to_owned(), "is required".to_owned())]
        );
    }
}
