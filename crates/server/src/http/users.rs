//! Users (API.md "Users"): get, update, soft delete, restore, admin search, export.
//! Who may call is settled by the extractors (`OwnedUser`, `AdminTarget`, `Admin`).

use axum::{Json, extract::State, http::StatusCode};
use domain::profile::RawProfileUpdate;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json as Body, Query},
    openapi::{AdminRef, OwnerRef},
    user_json::{SearchQuery, UpdateUser, UserList, UserResource, export_document},
};
use crate::auth::{
    extract::Admin,
    owned_user::{AdminTarget, OwnedUser},
};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_user, put_user, patch_user, delete_user))
        .routes(routes!(restore_user))
        .routes(routes!(search_users))
        .routes(routes!(export_user))
}

/// The default and largest page sizes of the search.
const LIMIT: app::page::PageLimit = app::page::PageLimit {
    default: 20,
    max: 100,
};

/// A user, by id, Clerk id or `me`.
#[utoipa::path(get, path = "/users/{user_ref}", tag = "users",
    params(
        ("user_ref" = String, Path, description = "UUID, Clerk user id (`user_…`) or `me`"),
        ("include_deleted" = Option<bool>, Query, description = "Admins: also find a soft-deleted user"),
    ),
    responses(
        (status = 200, description = "The user", body = UserResource),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(owned: OwnedUser) -> Json<UserResource> {
    Json(owned.user.into())
}

async fn update(
    state: &AppState,
    owned: OwnedUser,
    body: UpdateUser,
) -> Result<Json<UserResource>, ApiError> {
    let update = RawProfileUpdate::from(body).validate()?;
    let user = state.app().update_user(&owned.owner, update).await?;
    Ok(Json(user.into()))
}

/// The answers of PUT and PATCH, which are one update (documented once).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only its documentation is used
enum UpdateAnswers {
    /// The updated user
    #[response(status = 200)]
    Updated(UserResource),
    /// Another user's ref
    #[response(status = 403, content_type = "application/problem+json")]
    OtherUser(Problem<'static>),
    /// Unknown or deleted
    #[response(status = 404, content_type = "application/problem+json")]
    Unknown(Problem<'static>),
    /// Invalid, unknown or read-only field (email, ids)
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem<'static>),
}

/// Partial update of the profile (same as PATCH).
#[utoipa::path(put, path = "/users/{user_ref}", tag = "users",
    params(OwnerRef),
    request_body = UpdateUser,
    responses(UpdateAnswers))]
pub async fn put_user(
    State(state): State<AppState>,
    owned: OwnedUser,
    Body(body): Body<UpdateUser>,
) -> Result<Json<UserResource>, ApiError> {
    update(&state, owned, body).await
}

/// Partial update of the profile.
#[utoipa::path(patch, path = "/users/{user_ref}", tag = "users",
    params(OwnerRef),
    request_body = UpdateUser,
    responses(UpdateAnswers))]
pub async fn patch_user(
    State(state): State<AppState>,
    owned: OwnedUser,
    Body(body): Body<UpdateUser>,
) -> Result<Json<UserResource>, ApiError> {
    update(&state, owned, body).await
}

/// Soft delete: the user's provider tokens and pending OAuth states are deleted and their
/// integrations disconnected; an admin may restore within the retention window.
#[utoipa::path(delete, path = "/users/{user_ref}", tag = "users",
    params(OwnerRef),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or already deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    owned: OwnedUser,
) -> Result<StatusCode, ApiError> {
    state.app().delete_user(&owned.owner).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admin: undo a soft delete within `USER_RETENTION_DAYS`.
#[utoipa::path(post, path = "/users/{user_ref}/restore", tag = "users",
    params(AdminRef),
    responses(
        (status = 200, description = "The restored user", body = UserResource),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not deleted, or deleted longer ago than the retention window", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn restore_user(
    State(state): State<AppState>,
    target: AdminTarget,
) -> Result<Json<UserResource>, ApiError> {
    let id = app::users::id_of(&target.user);
    let days = state.config().user_retention_days;
    let user = state.app().restore_user(&target.admin, id, days).await?;
    Ok(Json(user.into()))
}

/// Admin: search users by email or name, newest first, with cursor pagination.
#[utoipa::path(get, path = "/users", tag = "users",
    params(SearchQuery),
    responses(
        (status = 200, description = "One page of users", body = UserList),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search_users(
    State(state): State<AppState>,
    Admin { admin, .. }: Admin,
    Query(q): Query<SearchQuery>,
) -> Result<Json<UserList>, ApiError> {
    let limit = LIMIT.check(q.limit)?;
    let page = state
        .app()
        .search_users(
            &admin,
            q.q.as_deref(),
            q.include_deleted,
            limit,
            q.cursor.as_deref(),
        )
        .await?;
    Ok(Json(UserList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Everything held about the user as one portable JSON document.
#[utoipa::path(get, path = "/users/{user_ref}/export", tag = "users",
    params(OwnerRef),
    responses(
        (status = 200, description = "Profile, preferences and history, integrations (no secrets), audit entries", body = Object),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_user(
    State(state): State<AppState>,
    owned: OwnedUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let export = state.app().export_user(&owned.owner, owned.user).await?;
    Ok(Json(export_document(export)))
}
