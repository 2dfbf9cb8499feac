//! `GET /providers`: the OAuth provider catalog as clients may see it (API.md
//! "Integrations"). Endpoints and credentials stay inside; `configured` says whether users
//! can connect a provider on this deployment.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_providers))
}

/// One provider of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderItem {
    /// Catalog name, used in the integration routes (`google`).
    pub name: String,
    /// Shown to users (`Google`).
    pub display_name: String,
    /// Scopes asked for when a client names none.
    pub default_scopes: Vec<String>,
    /// Whether this deployment has client credentials for it.
    pub configured: bool,
}

/// `{"items": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    /// Every provider, by name.
    pub items: Vec<ProviderItem>,
}

/// The provider catalog (public).
#[utoipa::path(get, path = "/providers", tag = "integrations",
    responses((status = 200, description = "The catalog", body = ProviderList)))]
pub async fn list_providers(State(state): State<AppState>) -> Json<ProviderList> {
    let items = state
        .app()
        .providers()
        .into_iter()
        .map(|p| ProviderItem {
            name: p.name,
            display_name: p.display_name,
            default_scopes: p.default_scopes,
            configured: p.configured,
        })
        .collect();
    Json(ProviderList { items })
}
