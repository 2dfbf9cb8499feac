//! Extractors that turn what the authenticate middleware recorded into rights:
//! [`Authenticated`] (any caller), [`Admin`], and [`Service<P>`] (a service key holding
//! permission `P`). The rights are the app's capabilities ([`app::access`]), minted here
//! from the [`Caller`] that authentication proved, with the request's meta. Missing or invalid credentials answer 401 `unauthorized` with a
//! `WWW-Authenticate: Bearer` header; a caller without the right answers 403 `forbidden`.
//! Other extractors (e.g. `OwnedUser`) start from [`require_principal`].

use app::access::{AsAdmin, AsService, Caller};
use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use domain::ErrorCode;

pub use app::access::{
    AdminPerm, AuditRead, IntegrationsRead, PreferencesRead, RequiredPermission, TokensRead,
    TokensRefresh, UsersRead,
};

use super::{AuthFailure, Principal, Refused, ServicePrincipal};
use crate::http::{error::ApiError, meta::request_meta};

/// Why an auth extractor refused: a 401 (with `WWW-Authenticate`) or a 403.
#[derive(Debug)]
pub struct AuthRejection(ApiError);

impl AuthRejection {
    /// 403 `forbidden` with `detail`.
    #[must_use]
    pub fn forbidden(detail: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self(ApiError::new(ErrorCode::Forbidden).detail(detail))
    }

    /// The error inside (for extractors that wrap this one).
    #[must_use]
    pub fn into_api_error(self) -> ApiError {
        self.0
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let unauthorized = self.0.code() == ErrorCode::Unauthorized;
        let mut res = self.0.into_response();
        if unauthorized || res.status() == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"user-service\""),
            );
        }
        res
    }
}

/// The caller, or a 401 saying why there is none. The reason never contains the
/// credentials themselves.
///
/// # Errors
/// 401 `unauthorized` when no credentials were sent or they are invalid.
pub fn require_principal(parts: &Parts) -> Result<Principal, AuthRejection> {
    if let Some(p) = parts.extensions.get::<Principal>() {
        return Ok(p.clone());
    }
    if let Some(Refused(e)) = parts.extensions.get::<Refused>() {
        return Err(AuthRejection(e.clone()));
    }
    let detail = match parts.extensions.get::<AuthFailure>() {
        Some(AuthFailure(reason)) => format!("invalid credentials: {reason}"),
        None => "authentication required: send a session token (Authorization: Bearer) or a service key (X-API-Key)".to_owned(),
    };
    Err(AuthRejection(
        ApiError::new(ErrorCode::Unauthorized).detail(detail),
    ))
}

/// The caller as the app's authentication proved it, or a 401 as [`require_principal`].
///
/// # Errors
/// As [`require_principal`].
pub fn require_caller(parts: &Parts) -> Result<Caller, AuthRejection> {
    // The middleware records both or neither; the principal's absence says why.
    let principal = require_principal(parts)?;
    parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
        tracing::error!(?principal, "a principal without the app's caller");
        AuthRejection(ApiError::new(ErrorCode::Unauthorized).detail("authentication required"))
    })
}

/// Any authenticated caller: a user or a service key.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        require_principal(parts).map(Self)
    }
}

/// The admin capability, the only one: a user whose admin claim is `admin`, or a service
/// key with `admin`; every admin route takes it.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The caller.
    pub principal: Principal,
    /// The right, for the use case.
    pub admin: AsAdmin,
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = require_principal(parts)?;
        let admin = require_caller(parts)?
            .as_admin(request_meta(parts))
            .ok_or_else(|| AuthRejection::forbidden("this route is for admins"))?;
        Ok(Self { principal, admin })
    }
}

/// A service key holding permission `P` (or `admin`). Users get 403: these routes are for
/// back-end services.
#[derive(Clone, Debug)]
pub struct Service<P> {
    /// The key's holder.
    pub key: ServicePrincipal,
    /// The right, for the use case.
    pub service: AsService<P>,
}

impl<P: RequiredPermission, S: Send + Sync> FromRequestParts<S> for Service<P> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Principal::Service(key) = require_principal(parts)? else {
            return Err(AuthRejection::forbidden(
                "this route is for service keys, not user sessions",
            ));
        };
        let service = require_caller(parts)?
            .as_service::<P>(request_meta(parts))
            .ok_or_else(|| {
                AuthRejection::forbidden(format!(
                    "the service key lacks the permission {}",
                    P::PERMISSION.as_str()
                ))
            })?;
        Ok(Self { key, service })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    #[test]
    fn rejection_detail_never_holds_the_credential() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl";
        let (mut parts, ()) = Request::builder()
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("request")
            .into_parts();
        parts.extensions.insert(AuthFailure("invalid signature"));
        let err = require_principal(&parts).expect_err("refused");
        let shown = format!("{err:?}");
        assert!(shown.contains("invalid signature"), "{shown}");
        assert!(
            !shown.contains(token) && !shown.contains("c2lnbmF0dXJl"),
            "{shown}"
        );
        let res = err.into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
