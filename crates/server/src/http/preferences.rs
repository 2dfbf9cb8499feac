//! Preferences routes (API.md "Preferences"). For now the public one: the JSON Schema of
//! the document and the system defaults. The per-user routes wait for the `OwnedUser`
//! extractor; their use cases are in `app::preferences`.

use axum::{Json, extract::State};
use domain::preferences::Preferences;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(schema))
}

/// `GET /preferences/schema`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesSchemaBody {
    /// JSON Schema (2020-12) of the preferences document, generated from the service's types.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// The system defaults in force.
    pub defaults: Preferences,
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
