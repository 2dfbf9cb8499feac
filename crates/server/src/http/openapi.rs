//! The OpenAPI 3.1 document, collected from the routes themselves (utoipa-axum), so a
//! route cannot exist without being described. Swagger UI is served from the binary.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The document's fixed parts; paths are added by each resource's router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-service",
        description = "Users, their preferences and their OAuth connections. Errors are RFC 9457 problem documents (application/problem+json) with a stable `type`.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(super::error::Problem, super::error::FieldErrorSchema)),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "auth", description = "Local development auth: the signing key's JWKS"),
        (name = "preferences", description = "Effective preferences = system defaults overlaid with the user's own choices. Writes take `If-Match: \"<version>\"` (the `ETag` of the last read) and answer 412 when someone changed the document since."),
        (name = "integrations", description = "Connections to OAuth providers. Tokens never appear in these answers."),
        (name = "internal", description = "For back-end services, with a service key (`X-API-Key`) holding the route's permission."),
        (name = "jobs", description = "Background jobs: status and manual runs (admins)"),
        (name = "events", description = "Events to other services: deliveries and retries (admins)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "clerk_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}
