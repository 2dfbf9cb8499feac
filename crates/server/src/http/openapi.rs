//! The OpenAPI 3.1 document, collected from the routes themselves (utoipa-axum), so a
//! route cannot exist without being described. Swagger UI is served from the binary.

use domain::ErrorCode;
use serde_json::json;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, ContentBuilder, Ref, RefOr, ResponseBuilder,
        path::Operation,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{error::code_for_status, openapi_examples};

/// `{user_ref}` of the routes a user's owner (or an admin) may call, as `OwnedUser` reads
/// it: declared once, so every such route documents it alike.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OwnerRef {
    /// UUID, Clerk user id or `me`
    pub user_ref: String,
}

/// `{user_ref}` of the admin-only and service routes (no `me`: the caller is not the user).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AdminRef {
    /// UUID or Clerk user id
    pub user_ref: String,
}

/// The document's fixed parts; paths are added by each resource's router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-service",
        description = "Users, their preferences and their OAuth connections. Errors are RFC 9457 problem documents (application/problem+json) with a stable `type`. Every text input refuses control characters and is bounded in length (docs/security.md, \"Input limits\").",
        contact(name = "user-service maintainers", url = "https://github.com/user-service/user-service", email = "platform@example.com"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(super::error::Problem, super::error::FieldErrorSchema)),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "users", description = "Users: profile reads and updates, soft delete and restore, admin search, export"),
        (name = "audit", description = "The hash-chained audit log (admins, `audit:read` keys, and each user for their own entries)"),
        (name = "webhooks", description = "Clerk events in, verified with the Svix scheme"),
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

/// Completes the document collected from the routes: the error answers every route can
/// give (bad input, authentication, rate limits, an unavailable dependency) are listed on
/// each operation they apply to, every problem answer is `application/problem+json` with
/// an example taken from the error-code table, and every other body gets its example from
/// `openapi_examples`. Runs after the routes are merged (a `modifiers(...)` entry would run
/// before any path exists).
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    // axum writes a catch-all segment `{*path}`; OpenAPI knows only `{path}`.
    let catch_all: Vec<String> = doc
        .paths
        .paths
        .keys()
        .filter(|p| p.contains("{*"))
        .cloned()
        .collect();
    for path in catch_all {
        if let Some(item) = doc.paths.paths.remove(&path) {
            doc.paths.paths.insert(path.replace("{*", "{"), item);
        }
    }
    unique_operation_ids(doc);
    for (path, item) in &mut doc.paths.paths {
        let ops = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, op) in ops {
            if let Some(op) = op.as_mut() {
                add_common_responses(path, op);
                add_examples(method, path, op);
            }
        }
    }
}

/// One handler serving several methods (the provider proxy) gives each the same
/// `operationId`; OpenAPI wants them unique, so each becomes `<id>_<method>`.
fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        let mut ops: Vec<(&str, &mut Operation)> = ops
            .into_iter()
            .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
            .collect();
        let first = ops.first().and_then(|(_, op)| op.operation_id.clone());
        let shared = ops.len() > 1 && ops.iter().all(|(_, op)| op.operation_id == first);
        if let (true, Some(id)) = (shared, first) {
            for (method, op) in &mut ops {
                op.operation_id = Some(format!("{id}_{method}"));
            }
        }
    }
}

/// Routes that need no credentials (the webhook documents its own 401).
const PUBLIC: [&str; 7] = [
    "/health",
    "/ready",
    "/metrics",
    "/providers",
    "/preferences/schema",
    "/.well-known/jwks.json",
    "/webhooks/clerk",
];
/// Routes outside rate limiting (API.md "Rate limiting").
const UNLIMITED: [&str; 3] = ["/health", "/ready", "/metrics"];

fn add_common_responses(path: &str, op: &mut Operation) {
    // A string pattern, not a char: keeps brace-counting tools (long-functions.py) right.
    let templated = path.contains("{");
    let has_params = templated || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    let mut add = |status: u16, when: bool| {
        if when {
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| problem_response(status));
        }
    };
    add(400, has_params || has_body);
    add(401, !PUBLIC.contains(&path));
    add(403, !PUBLIC.contains(&path));
    add(404, templated);
    add(413, has_body);
    add(415, has_body);
    add(422, has_body);
    add(429, !UNLIMITED.contains(&path));
    add(503, true);
}

fn problem_response(status: u16) -> RefOr<utoipa::openapi::Response> {
    let code = status_code(status);
    ResponseBuilder::new()
        .description(code.title())
        .content("application/problem+json", problem_content(status))
        .build()
        .into()
}

fn status_code(status: u16) -> ErrorCode {
    axum::http::StatusCode::from_u16(status).map_or(ErrorCode::InternalError, code_for_status)
}

fn problem_content(status: u16) -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .example(Some(problem_example(status)))
        .build()
}

/// A problem document of `status`, from the error-code table.
#[must_use]
pub fn problem_example(status: u16) -> serde_json::Value {
    let code = status_code(status);
    let mut example = json!({
        "type": code.as_str(), "title": code.title(), "status": code.status(),
        "detail": "what went wrong this time", "instance": "/users/me",
        "request_id": "0193f3a2-7c1e-7000-8000-0000000000aa", "timestamp": "2026-11-25T17:02:57Z"
    });
    if matches!(code, ErrorCode::ValidationError | ErrorCode::InvalidRequest) {
        example["detail"] = json!("ui.theme must be one of light, dark, system");
        example["errors"] =
            json!([{"field": "ui.theme", "message": "must be one of light, dark, system"}]);
    }
    example
}

fn is_problem(content: &Content) -> bool {
    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

fn schema_name(content: &Content) -> Option<&str> {
    match &content.schema {
        Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next(),
        _ => None,
    }
}

fn fill_example(method: &str, path: &str, media_type: &str, content: &mut Content) {
    if content.example.is_some() || !content.examples.is_empty() {
        return;
    }
    content.example = schema_name(content)
        .and_then(openapi_examples::for_schema)
        .or_else(|| openapi_examples::for_operation(method, path, media_type));
}

fn add_examples(method: &str, path: &str, op: &mut Operation) {
    if let Some(RefOr::T(body)) = op.request_body.as_mut() {
        for (media_type, content) in &mut body.content {
            if let RefOr::T(content) = content {
                fill_example(method, path, media_type, content);
            }
        }
    }
    for (status, response) in &mut op.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        // A problem is always sent as application/problem+json, whatever the annotation said.
        let problem = response
            .content
            .values()
            .any(|c| matches!(c, RefOr::T(c) if is_problem(c)));
        if problem {
            let status = status.parse().unwrap_or(500);
            response.content.clear();
            response.content.insert(
                "application/problem+json".to_owned(),
                problem_content(status).into(),
            );
            continue;
        }
        for (media_type, content) in &mut response.content {
            if let RefOr::T(content) = content {
                fill_example(method, path, media_type, content);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::http::openapi_document()).expect("serializable")
    }

    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                ops.push((format!("{} {path}", method.to_uppercase()), op));
            }
        }
        ops
    }

    fn has_example(content: &Value) -> bool {
        content.get("example").is_some()
            || content
                .get("examples")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
    }

    #[test]
    fn every_request_and_response_body_has_an_example() {
        let doc = document();
        let mut missing = Vec::new();
        for (name, op) in operations(&doc) {
            let bodies = op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(ct, c)| (format!("{name} request {ct}"), c));
            let answers = op["responses"]
                .as_object()
                .expect("responses")
                .iter()
                .flat_map(|(status, r)| {
                    r["content"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(move |(ct, c)| (format!("{status} {ct}"), c))
                })
                .map(|(what, c)| (format!("{name} {what}"), c));
            for (what, content) in bodies.chain(answers) {
                if !has_example(content) {
                    missing.push(what);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "bodies without an example: {missing:#?}"
        );
    }

    #[test]
    fn problems_are_problem_json_and_common_errors_are_listed() {
        let doc = document();
        for (name, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = r["content"].as_object().expect("error content");
                    // The connect page's browser routes answer a person with a page.
                    let page = name.starts_with("GET /connect/");
                    assert!(
                        content
                            .keys()
                            .all(|k| k == "application/problem+json" || (page && k == "text/html")),
                        "{name} {status}: {content:?}"
                    );
                }
            }
            assert!(responses.contains_key("503"), "{name} lacks 503");
        }
        let get_user = &doc["paths"]["/users/{user_ref}"]["get"]["responses"];
        for status in ["400", "401", "403", "404", "429"] {
            assert!(
                get_user.get(status).is_some(),
                "GET /users/{{user_ref}} {status}"
            );
        }
    }

    #[test]
    fn the_preferences_document_allows_its_own_fields() {
        let doc = document();
        let schema = &doc["components"]["schemas"]["PreferencesDocument"];
        for field in ["schema_version", "version", "updated_at", "ui", "privacy"] {
            assert!(
                schema["properties"].get(field).is_some(),
                "{field}: {schema}"
            );
        }
        assert!(schema.get("allOf").is_none(), "{schema}");
        assert_ne!(
            schema["additionalProperties"],
            Value::Bool(false),
            "{schema}"
        );
    }

    #[test]
    fn contact_and_every_used_tag_are_declared() {
        let doc = document();
        assert!(
            doc["info"]["contact"]["name"].is_string(),
            "{}",
            doc["info"]
        );
        let declared: Vec<&str> = doc["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        for (name, op) in operations(&doc) {
            let tags = op["tags"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no tag"));
            for t in tags {
                let t = t.as_str().expect("tag name");
                assert!(declared.contains(&t), "{name}: tag {t} is not declared");
            }
        }
    }
}
