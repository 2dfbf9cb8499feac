//! Preferences routes (API.md "Preferences"): the user's document with its `ETag`, PUT,
//! merge-patch PATCH, reset, history, rollback, export and import, the service read under
//! `/internal`, and the public schema. Who may call is settled by the extractors; the rules
//! live in `app::preferences`.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use domain::preferences::{PreferencesDocument, PreferencesExport};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json as Body, Query},
    openapi::{AdminRef, OwnerRef},
    preferences_json::{
        HistoryBody, HistoryQuery, IfMatch, IncludeQuery, PreferencesSchemaBody, ResetQuery,
        RollbackBody,
    },
};
use crate::auth::{
    extract::PreferencesRead,
    owned_user::{OwnedUser, ServiceTarget},
};

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schema))
        .routes(routes!(get_preferences, put_preferences, patch_preferences))
        .routes(routes!(reset_preferences))
        .routes(routes!(preference_history))
        .routes(routes!(rollback_preferences))
        .routes(routes!(export_preferences))
        .routes(routes!(import_preferences))
        .routes(routes!(internal_preferences))
}

/// The document with `ETag: "<version>"`, the token `If-Match` takes back.
fn tagged(doc: PreferencesDocument) -> Response {
    let etag = format!("\"{}\"", doc.version);
    ([(header::ETAG, etag)], Json(doc)).into_response()
}

/// The JSON Schema of the preferences document and the system defaults (public).
#[utoipa::path(get, path = "/preferences/schema", tag = "preferences",
    responses((status = 200, description = "Schema and defaults", body = PreferencesSchemaBody)))]
pub async fn schema(State(state): State<AppState>) -> Json<PreferencesSchemaBody> {
    let s = state.app().preferences_schema();
    Json(PreferencesSchemaBody {
        schema: s.schema,
        defaults: s.defaults,
    })
}

/// The effective preferences: system defaults overlaid with the user's own choices.
#[utoipa::path(get, path = "/users/{user_ref}/preferences", tag = "preferences",
    params(OwnerRef, IncludeQuery),
    responses(
        (status = 200, description = "The document; `ETag: \"<version>\"`", body = PreferencesDocument),
        (status = 422, description = "`include` other than `sources`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another user's ref", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    Query(q): Query<IncludeQuery>,
) -> Result<Response, ApiError> {
    let sources = q.sources()?;
    Ok(tagged(
        state.app().preferences(&owned.owner, sources).await?,
    ))
}

/// Partial update with merge semantics: only the keys sent change.
#[utoipa::path(put, path = "/users/{user_ref}/preferences", tag = "preferences",
    params(OwnerRef,
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: refuse with 412 if the document changed since")),
    request_body(content = Object, description = "Any subset of the document, e.g. `{\"ui\": {\"theme\": \"dark\"}}`"),
    responses(
        (status = 200, description = "The new document", body = PreferencesDocument),
        (status = 412, description = "`If-Match` names an older version; nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, by path", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    if_match: IfMatch,
    Body(partial): Body<Value>,
) -> Result<Response, ApiError> {
    let expected = if_match.version()?;
    let doc = state
        .app()
        .put_preferences(&owned.owner, partial, expected)
        .await?;
    Ok(tagged(doc))
}

/// JSON Merge Patch (RFC 7396): `null` removes the override, falling back to the default.
#[utoipa::path(patch, path = "/users/{user_ref}/preferences", tag = "preferences",
    params(OwnerRef,
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: refuse with 412 if the document changed since")),
    request_body(content = Object, content_type = "application/merge-patch+json", description = "A merge patch of the document"),
    responses(
        (status = 200, description = "The new document", body = PreferencesDocument),
        (status = 412, description = "`If-Match` names an older version; nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, by path", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    if_match: IfMatch,
    Body(patch): Body<Value>,
) -> Result<Response, ApiError> {
    let expected = if_match.version()?;
    let doc = state
        .app()
        .patch_preferences(&owned.owner, patch, expected)
        .await?;
    Ok(tagged(doc))
}

/// Back to the defaults: everything, or one category with `?category=ui`.
#[utoipa::path(post, path = "/users/{user_ref}/preferences/reset", tag = "preferences",
    params(OwnerRef, ResetQuery,
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`")),
    responses(
        (status = 200, description = "The new document", body = PreferencesDocument),
        (status = 412, description = "Stale `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown category", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    if_match: IfMatch,
    Query(q): Query<ResetQuery>,
) -> Result<Response, ApiError> {
    let category = q.category()?;
    let expected = if_match.version()?;
    let doc = state
        .app()
        .reset_preferences(&owned.owner, category, expected)
        .await?;
    Ok(tagged(doc))
}

/// The versions, newest first: when, by whom, and the merge patch that made each one.
#[utoipa::path(get, path = "/users/{user_ref}/preferences/history", tag = "preferences",
    params(OwnerRef, HistoryQuery),
    responses(
        (status = 200, description = "One page of versions", body = HistoryBody),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn preference_history(
    State(state): State<AppState>,
    owned: OwnedUser,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryBody>, ApiError> {
    let limit = q.limit()?;
    let page = state
        .app()
        .preference_history(&owned.owner, q.cursor.as_deref(), limit)
        .await?;
    Ok(Json(page.into()))
}

/// Restores an earlier version (0: all defaults) as a new version.
#[utoipa::path(post, path = "/users/{user_ref}/preferences/rollback", tag = "preferences",
    params(OwnerRef,
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`")),
    request_body = RollbackBody,
    responses(
        (status = 200, description = "The new document", body = PreferencesDocument),
        (status = 404, description = "The user never had that version", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale `If-Match`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rollback_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    if_match: IfMatch,
    Body(body): Body<RollbackBody>,
) -> Result<Response, ApiError> {
    let expected = if_match.version()?;
    let version = body.version()?;
    let doc = state
        .app()
        .rollback_preferences(&owned.owner, version, expected)
        .await?;
    Ok(tagged(doc))
}

/// The portable document: the user's own choices and their `schema_version`.
#[utoipa::path(get, path = "/users/{user_ref}/preferences/export", tag = "preferences",
    params(OwnerRef),
    responses((status = 200, description = "The export", body = PreferencesExport)))]
pub async fn export_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
) -> Result<Json<PreferencesExport>, ApiError> {
    Ok(Json(state.app().export_preferences(&owned.owner).await?))
}

/// Replaces the user's choices with an exported document; older schema versions migrate.
#[utoipa::path(post, path = "/users/{user_ref}/preferences/import", tag = "preferences",
    params(OwnerRef,
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`")),
    request_body = PreferencesExport,
    responses(
        (status = 200, description = "The new document", body = PreferencesDocument),
        (status = 412, description = "Stale `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid document, by path (`preferences.ui.theme`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_preferences(
    State(state): State<AppState>,
    owned: OwnedUser,
    if_match: IfMatch,
    Body(document): Body<Value>,
) -> Result<Response, ApiError> {
    let expected = if_match.version()?;
    let doc = state
        .app()
        .import_preferences(&owned.owner, &document, expected)
        .await?;
    Ok(tagged(doc))
}

/// For back-end services (`preferences:read`): a user's effective preferences.
#[utoipa::path(get, path = "/internal/users/{user_ref}/preferences", tag = "internal",
    params(AdminRef),
    security(("service_key" = [])),
    responses(
        (status = 200, description = "The document", body = PreferencesDocument),
        (status = 403, description = "Not a service key with `preferences:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or deleted user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn internal_preferences(
    State(state): State<AppState>,
    target: ServiceTarget<PreferencesRead>,
) -> Result<Response, ApiError> {
    let id = app::users::id_of(&target.user);
    Ok(tagged(
        state.app().service_preferences(&target.service, id).await?,
    ))
}
