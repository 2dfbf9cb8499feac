//! Extractors for the `/users/{user_ref}` routes: who calls (the [`Caller`] the
//! authenticate middleware put into the request) and which user the path names, with the
//! owner-or-admin rule applied before the user's existence is revealed; each mints the
//! capability its routes' use cases take ([`AsOwner`], [`AsAdmin`], [`AsService`]).

use app::users::Deleted;
use app::{
    access::{AsAdmin, AsOwner, AsService, Caller},
    users::UserKey,
};
use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::{Method, request::Parts},
};
use domain::user::User;
use domain::{ErrorCode, user::UserRef};
use serde::Deserialize;

use super::{
    LiveUser, ServicePrincipal,
    extract::{Admin, AuthRejection, RequiredPermission, Service, require_caller},
};
use crate::http::{AppState, error::ApiError, meta::request_meta};

/// The caller as authentication proved it, or 401 when the request carries no valid
/// credentials.
fn caller(parts: &Parts) -> Result<Caller, ApiError> {
    require_caller(parts).map_err(AuthRejection::into_api_error)
}

/// The user named by `{user_ref}`, which the caller owns or the caller is an admin. A
/// non-admin naming anyone else gets 403 whether or not that user exists; an unknown or
/// soft-deleted user is 404 (an admin's `GET …?include_deleted=true` sees deleted ones).
#[derive(Clone, Debug)]
pub struct OwnedUser {
    /// The user the path names.
    pub user: User,
    /// The right to act for the user, for the use case (actor and request meta).
    pub owner: AsOwner,
}

/// The user named by `{user_ref}`, deleted or not, for admin-only routes (restore).
#[derive(Clone, Debug)]
pub struct AdminTarget {
    /// The user the path names (possibly soft-deleted).
    pub user: User,
    /// The right, for the use case.
    pub admin: AsAdmin,
}

#[derive(Deserialize)]
struct IncludeDeleted {
    #[serde(default)]
    include_deleted: bool,
}

fn forbidden() -> ApiError {
    ApiError::new(ErrorCode::Forbidden).detail("you may act only on your own user")
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound).detail("user not found")
}

async fn path_ref(parts: &mut Parts, state: &AppState) -> Result<UserRef, ApiError> {
    crate::http::extract::check_path(parts, state).await?;
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| not_found())?;
    let raw = params
        .iter()
        .find(|(k, _)| *k == "user_ref")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(not_found)?;
    UserRef::parse(&raw)
        .map_err(|m| ApiError::new(ErrorCode::InvalidRequest).detail(format!("user_ref {m}")))
}

fn key_of(r: UserRef, caller: &Caller) -> Result<UserKey, ApiError> {
    UserKey::from_ref(r, caller.clerk_user_id()).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidRequest)
            .detail("`me` names the caller of a user session token; use the user's id")
    })
}

/// Checks a non-admin caller owns `key`, without revealing whether `key` exists.
async fn check_owner(
    state: &AppState,
    caller: &Caller,
    live: Option<&LiveUser>,
    key: &UserKey,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    let Some(me) = caller.clerk_user_id() else {
        return Err(ApiError::new(ErrorCode::Forbidden)
            .detail("a service key needs the admin permission for user routes"));
    };
    let owns = match (key, live) {
        (UserKey::Clerk(c), _) => c == me,
        (UserKey::Id(id), Some(LiveUser(own))) => own.id == *id,
        (UserKey::Id(id), None) => state
            .app()
            .find_user(&UserKey::Clerk(me.clone()), Deleted::Include)
            .await?
            .is_some_and(|own| own.id == *id),
    };
    if owns { Ok(()) } else { Err(forbidden()) }
}

/// The caller's own row, read while authenticating, when `key` names it.
fn own_row(live: Option<&LiveUser>, key: &UserKey) -> Option<User> {
    let LiveUser(u) = live?;
    let mine = match key {
        UserKey::Clerk(c) => c.as_str() == u.clerk_user_id,
        UserKey::Id(id) => *id == u.id,
    };
    mine.then(|| User::clone(u))
}

impl FromRequestParts<AppState> for OwnedUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = caller(parts)?;
        let live = parts.extensions.get::<LiveUser>().cloned();
        let key = key_of(path_ref(parts, state).await?, &caller)?;
        check_owner(state, &caller, live.as_ref(), &key).await?;
        let include_deleted = caller.is_admin()
            && parts.method == Method::GET
            && serde_urlencoded::from_str::<IncludeDeleted>(parts.uri.query().unwrap_or_default())
                .is_ok_and(|q| q.include_deleted);
        let deleted = if include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        };
        // A live caller naming themselves: the row authentication just read (on the
        // primary). Otherwise only a GET may read a lagging replica; every other method
        // writes next, so it reads the primary.
        let user = match own_row(live.as_ref(), &key) {
            Some(u) => u,
            None if parts.method == Method::GET => state
                .app()
                .find_user_may_lag(&key, deleted)
                .await?
                .ok_or_else(not_found)?,
            None => state
                .app()
                .find_user(&key, deleted)
                .await?
                .ok_or_else(not_found)?,
        };
        let owner = caller
            .as_owner(
                app::users::id_of(&user),
                &user.clerk_user_id,
                request_meta(parts),
            )
            .ok_or_else(forbidden)?;
        Ok(Self { user, owner })
    }
}

impl FromRequestParts<AppState> for AdminTarget {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Admin { admin, .. } = Admin::from_request_parts(parts, state)
            .await
            .map_err(AuthRejection::into_api_error)?;
        let caller = caller(parts)?;
        let key = key_of(path_ref(parts, state).await?, &caller)?;
        let user = state
            .app()
            .find_user(&key, Deleted::Include)
            .await?
            .ok_or_else(not_found)?;
        Ok(Self { user, admin })
    }
}

/// The user named by `{user_ref}` on an `/internal/…` route: the caller is a service key
/// holding `P` (checked first, before the user's existence is revealed); `me` means nothing
/// to a service and is 400; an unknown or soft-deleted user is 404.
#[derive(Clone, Debug)]
pub struct ServiceTarget<P> {
    /// The user the path names.
    pub user: User,
    /// The calling key.
    pub key: ServicePrincipal,
    /// The right, for the use case.
    pub service: AsService<P>,
}

impl<P: RequiredPermission> FromRequestParts<AppState> for ServiceTarget<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Service { key, service } = Service::<P>::from_request_parts(parts, state)
            .await
            .map_err(AuthRejection::into_api_error)?;
        let caller = caller(parts)?;
        let user_key = key_of(path_ref(parts, state).await?, &caller)?;
        let user = state
            .app()
            .find_user(&user_key, Deleted::Exclude)
            .await?
            .ok_or_else(not_found)?;
        Ok(Self { user, key, service })
    }
}
