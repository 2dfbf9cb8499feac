//! The origin rule (docs/security.md "Browser headers and origin rule"): a browser sends
//! the `__session` cookie with any request to our host, also one a foreign page makes
//! (a cross-site form post). A write authenticated by that cookie therefore must come with
//! an `Origin` header naming one of our front ends (`CORS_ALLOWED_ORIGINS`). A Bearer
//! header cannot be attached by a foreign page, so it needs no such check.

use axum::http::{HeaderMap, Method, header};

/// True for the methods that change something.
#[must_use]
pub fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// True when `Origin` is present and one of `allowed` (compared as browsers serialise
/// origins: scheme, host and port, no path; case-insensitively, a trailing `/` ignored).
#[must_use]
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return false;
    };
    allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("header"));
        h
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example.com/".to_owned()];
        assert!(origin_allowed(
            &with_origin("https://app.example.com"),
            &allowed
        ));
        assert!(origin_allowed(
            &with_origin("https://APP.example.com"),
            &allowed
        ));
        assert!(!origin_allowed(
            &with_origin("https://evil.example"),
            &allowed
        ));
        assert!(!origin_allowed(&with_origin("null"), &allowed));
        assert!(!origin_allowed(
            &with_origin("https://app.example.com.evil"),
            &allowed
        ));
        assert!(!origin_allowed(&HeaderMap::new(), &allowed));
        assert!(!origin_allowed(
            &with_origin("https://app.example.com"),
            &[]
        ));
        assert!(
            is_write(&Method::DELETE) && !is_write(&Method::GET) && !is_write(&Method::OPTIONS)
        );
    }
}
