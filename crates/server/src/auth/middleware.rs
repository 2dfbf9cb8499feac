//! The authenticate middleware: reads the credentials a request carries and records the
//! outcome in its extensions. It never answers by itself; extractors decide.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use super::{AuthFailure, Principal, ServicePrincipal};
use crate::http::AppState;

/// Name of Clerk's session cookie.
const SESSION_COOKIE: &str = "__session";
const API_KEY_HEADER: &str = "x-api-key";
const SERVICE_KEY_PREFIX: &str = app::service_keys::KEY_PREFIX;

/// What a request presented.
#[derive(Debug, PartialEq, Eq)]
enum Credential<'a> {
    ServiceKey(&'a str),
    SessionToken(&'a str),
    Malformed(&'static str),
}

/// `Authorization: Bearer usk_…` / `ApiKey usk_…` and `X-API-Key: usk_…` are service keys;
/// any other bearer value is a session token; with no header, the `__session` cookie.
fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let Ok(v) = v.to_str() else {
            return Some(Credential::Malformed("unreadable Authorization header"));
        };
        let (scheme, value) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
        let value = value.trim();
        return Some(if value.is_empty() {
            Credential::Malformed("empty credentials")
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if value.starts_with(SERVICE_KEY_PREFIX) {
                Credential::ServiceKey(value)
            } else {
                Credential::SessionToken(value)
            }
        } else if scheme.eq_ignore_ascii_case("apikey") {
            if value.starts_with(SERVICE_KEY_PREFIX) {
                Credential::ServiceKey(value)
            } else {
                Credential::Malformed("ApiKey credentials must be a service key")
            }
        } else {
            Credential::Malformed("unsupported authorization scheme")
        });
    }
    if let Some(v) = headers.get(API_KEY_HEADER) {
        return Some(match v.to_str().map(str::trim) {
            Ok(k) if k.starts_with(SERVICE_KEY_PREFIX) => Credential::ServiceKey(k),
            _ => Credential::Malformed("X-API-Key must be a service key"),
        });
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| {
            let value = value.trim();
            if value.is_empty() {
                Credential::Malformed("empty session cookie")
            } else {
                Credential::SessionToken(value)
            }
        })
}

/// The middleware (added in `http::router`, inside the request-context layer).
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let outcome = match credential(req.headers()) {
        None => None,
        Some(Credential::Malformed(reason)) => Some(Err(AuthFailure(reason))),
        Some(Credential::SessionToken(token)) => {
            Some(state.auth().jwt().verify(token).await.map(Principal::User))
        }
        Some(Credential::ServiceKey(key)) => {
            Some(match state.app().verify_service_key(key).await {
                Ok(Some(k)) => Ok(Principal::Service(ServicePrincipal {
                    key_id: k.id,
                    name: k.name.clone(),
                    permissions: k.permissions.clone(),
                })),
                Ok(None) => Err(AuthFailure("unknown or revoked service key")),
                // Not the caller's fault: a database that is down is a 503 (with
                // Retry-After), anything else a 500, never a 401 that says "bad key".
                Err(e) => return crate::http::error::ApiError::from(e).into_response(),
            })
        }
    };
    match outcome {
        None => {}
        Some(Ok(principal)) => {
            req.extensions_mut().insert(principal);
        }
        Some(Err(failure)) => {
            tracing::debug!(reason = failure.0, "credentials refused");
            req.extensions_mut().insert(failure);
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn credential_forms() {
        use Credential as C;
        assert_eq!(credential(&headers(&[])), None);
        assert_eq!(
            credential(&headers(&[("authorization", "Bearer usk_abc")])),
            Some(C::ServiceKey("usk_abc"))
        );
        assert_eq!(
            credential(&headers(&[("authorization", "ApiKey usk_abc")])),
            Some(C::ServiceKey("usk_abc"))
        );
        assert_eq!(
            credential(&headers(&[("x-api-key", "usk_abc")])),
            Some(C::ServiceKey("usk_abc"))
        );
        assert_eq!(
            credential(&headers(&[("authorization", "bearer eyJ.x.y")])),
            Some(C::SessionToken("eyJ.x.y"))
        );
        assert_eq!(
            credential(&headers(&[("cookie", "a=1; __session=eyJ.a.b; c=2")])),
            Some(C::SessionToken("eyJ.a.b"))
        );
        assert!(matches!(
            credential(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])),
            Some(C::Malformed(_))
        ));
        assert!(matches!(
            credential(&headers(&[("authorization", "ApiKey eyJ.x.y")])),
            Some(C::Malformed(_))
        ));
        assert!(matches!(
            credential(&headers(&[("authorization", "Bearer")])),
            Some(C::Malformed(_))
        ));
        // The header wins over a (possibly stale) cookie.
        assert_eq!(
            credential(&headers(&[
                ("cookie", "__session=old"),
                ("authorization", "Bearer new")
            ])),
            Some(C::SessionToken("new"))
        );
    }
}
