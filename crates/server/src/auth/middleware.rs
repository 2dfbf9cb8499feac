//! The authenticate middleware: reads the credentials a request carries and records the
//! outcome in its extensions; extractors decide what it means for the route. It answers by
//! itself only with 429, when the client's IP has failed to authenticate too often
//! ([`super::failures`]): that refusal must come before any lookup.
//!
//! Order of the checks, cheapest first: the shape of the credentials, the origin rule for
//! cookie writes ([`super::origin`]), the in-memory caches of verified keys and tokens, the
//! failure limit, and only then a database lookup or a signature check. A verified session
//! must then name a live user ([`app::users::session`]).

use std::{net::IpAddr, sync::Arc, time::Duration};

use app::{
    access::Caller,
    service_keys::KeyCheck,
    users::session::{SessionClaims, SessionRead, SessionUser},
};
use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::ErrorCode;

use super::{
    AuthFailure, LiveUser, Principal, Refused, ServicePrincipal, UserPrincipal,
    failures::FailureKind, origin,
};
use crate::http::{AppState, error::ApiError, rate_limit::client_ip};

/// Name of Clerk's session cookie.
const SESSION_COOKIE: &str = "__session";
const API_KEY_HEADER: &str = "x-api-key";
const SERVICE_KEY_PREFIX: &str = app::service_keys::KEY_PREFIX;

/// What a request presented.
#[derive(Debug, PartialEq, Eq)]
enum Credential<'a> {
    ServiceKey(&'a str),
    /// A session token, and whether it came in the cookie (not a header).
    SessionToken(&'a str, bool),
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
                Credential::SessionToken(value, false)
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
                Credential::SessionToken(value, true)
            }
        })
}

/// What authenticating a request came to.
enum Outcome {
    /// A caller (as the server describes it, and as the app's proof of authentication),
    /// and for a user the live row it speaks for.
    Principal(Principal, Caller, Option<LiveUser>),
    /// Invalid credentials: 401 in the extractors.
    Failure(AuthFailure),
    /// Valid credentials without authority: this error in the extractors.
    Refused(ApiError),
    /// The client's IP is over its failure limit: 429 now, nothing checked.
    Throttled(Duration),
}

/// The middleware (added in `http::router`, inside the request-context layer).
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(credential) = credential(req.headers()) else {
        return next.run(req).await;
    };
    let ip = client_ip(&req, state.config().http.trust_forwarded_for);
    let outcome = match credential {
        Credential::Malformed(reason) => {
            state.auth_failures().failed(ip, FailureKind::Malformed);
            Outcome::Failure(AuthFailure(reason))
        }
        Credential::SessionToken(token, from_cookie) => {
            if from_cookie
                && origin::is_write(req.method())
                && !origin::origin_allowed(req.headers(), &state.config().http.cors_allowed_origins)
            {
                Outcome::Refused(ApiError::new(ErrorCode::Forbidden).detail(
                    "a write authenticated by the session cookie needs an Origin header naming an allowed front end (CORS_ALLOWED_ORIGINS)",
                ))
            } else {
                let read = if req.method().is_safe() {
                    SessionRead::MayLag
                } else {
                    SessionRead::Current
                };
                session(&state, token, ip, read).await
            }
        }
        Credential::ServiceKey(key) => service(&state, key, ip).await,
    };
    let ext = req.extensions_mut();
    match outcome {
        Outcome::Principal(p, caller, live) => {
            ext.insert(p);
            ext.insert(caller);
            if let Some(live) = live {
                ext.insert(live);
            }
        }
        Outcome::Failure(failure) => {
            tracing::debug!(reason = failure.0, "credentials refused");
            ext.insert(failure);
        }
        Outcome::Refused(error) => {
            tracing::debug!(
                code = error.code().as_str(),
                "credentials carry no authority"
            );
            ext.insert(Refused(error));
        }
        Outcome::Throttled(wait) => return throttled(wait),
    }
    next.run(req).await
}

/// A session token: the verified-token cache, else the failure gate and a signature check;
/// then the live user it speaks for.
async fn session(state: &AppState, token: &str, ip: IpAddr, read: SessionRead) -> Outcome {
    let verifier = state.auth().jwt();
    let verified = match verifier.cached(token) {
        Some(answer) => answer,
        None => {
            if let Err(wait) = state.auth_failures().gate(ip) {
                return Outcome::Throttled(wait);
            }
            verifier.verify(token).await
        }
    };
    match verified {
        Ok(user) => live_user(state, user, ip, read).await,
        Err(failure) => {
            state.auth_failures().failed(ip, FailureKind::SessionToken);
            Outcome::Failure(failure)
        }
    }
}

/// A verified session becomes a principal only while its user is live (the one place:
/// `App::session_user`).
async fn live_user(
    state: &AppState,
    user: UserPrincipal,
    ip: IpAddr,
    read: SessionRead,
) -> Outcome {
    // The sign-up race may create the user here: its audit entry carries the IP.
    let meta = app::RequestMeta {
        ip: Some(ip.to_string()),
        ..app::RequestMeta::default()
    };
    let claims = SessionClaims {
        clerk_user_id: user.clerk_user_id().clone(),
        admin: user.admin(),
    };
    match state.app().session_user(claims, meta, read).await {
        Ok(SessionUser::Live { caller, user: row }) => Outcome::Principal(
            Principal::User(user),
            caller,
            Some(LiveUser(Arc::from(row))),
        ),
        Ok(SessionUser::Deleted) => {
            state.auth_failures().failed(ip, FailureKind::NoLiveUser);
            Outcome::Refused(
                ApiError::new(ErrorCode::Forbidden)
                    .detail("the account of this session has been deleted"),
            )
        }
        // No user yet (the webhook has not arrived, and Clerk, when asked, knows none): the
        // session may name only its own `me`, which is 404 (API.md), and holds no admin
        // power: authority needs a live user.
        Ok(SessionUser::Unknown(caller)) => {
            Outcome::Principal(Principal::User(user.without_admin()), caller, None)
        }
        Err(e) => Outcome::Refused(ApiError::from(e)),
    }
}

/// A service key: the cache, else the failure gate and a database lookup.
async fn service(state: &AppState, key: &str, ip: IpAddr) -> Outcome {
    let app = state.app();
    let found = match app.check_service_key_cached(key).await {
        Ok(KeyCheck::Known(k)) => Ok(Some(k)),
        Ok(KeyCheck::Malformed) => Ok(None),
        Ok(KeyCheck::NeedsLookup(pending)) => {
            if let Err(wait) = state.auth_failures().gate(ip) {
                return Outcome::Throttled(wait);
            }
            app.look_up_service_key(pending).await
        }
        Err(e) => Err(e),
    };
    match found {
        Ok(Some(k)) => Outcome::Principal(
            Principal::Service(ServicePrincipal::from(k.clone())),
            Caller::from(k),
            None,
        ),
        Ok(None) => {
            state.auth_failures().failed(ip, FailureKind::ServiceKey);
            Outcome::Failure(AuthFailure("unknown or revoked service key"))
        }
        // Not the caller's fault: a database that is down is a 503 (with Retry-After),
        // anything else a 500, never a 401 that says "bad key".
        Err(e) => Outcome::Refused(ApiError::from(e)),
    }
}

/// 429 for an IP over its failure limit.
fn throttled(wait: Duration) -> Response {
    let retry = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry = retry.max(1);
    let mut res = ApiError::new(ErrorCode::RateLimited)
        .detail(format!(
            "too many failed authentications from this address; retry in {retry} s"
        ))
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry));
    res
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
            Some(C::SessionToken("eyJ.x.y", false))
        );
        assert_eq!(
            credential(&headers(&[("cookie", "a=1; __session=eyJ.a.b; c=2")])),
            Some(C::SessionToken("eyJ.a.b", true))
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
            Some(C::SessionToken("new", false))
        );
    }
}
