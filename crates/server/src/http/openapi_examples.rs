//! An example for every request and response body of the OpenAPI document, by the schema
//! it shows (or, for free-form bodies, by `METHOD path`). Problem answers get theirs from
//! the error-code table (`openapi::problem_example`). A test checks that no body lacks one.

use serde_json::{Value, json};

const USER_ID: &str = "0193f3a2-7c1e-7000-8000-000000000001";
const AT: &str = "2026-11-25T17:02:57Z";
/// The JSON Schema dialect of the preferences schema.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

fn user() -> Value {
    json!({
        "id": USER_ID, "clerk_user_id": "user_2abcDEF9", "email": "ada@example.com",
        "first_name": "Ada", "last_name": "Lovelace",
        "profile_image_url": "https://img.example.com/ada.png",
        "onboarding_completed": false, "onboarding_step": "welcome",
        "onboarding_completed_at": null, "last_sign_in_at": null,
        "created_at": AT, "updated_at": AT, "deleted_at": null
    })
}

fn preferences() -> Value {
    json!({
        "ui": {"theme": "system", "language": "en", "timezone": "UTC", "date_format": "YYYY-MM-DD",
               "time_format": "24h", "density": "comfortable"},
        "notifications": {"email_enabled": true, "push_enabled": true, "in_app_enabled": true,
                          "digest_frequency": "weekly",
                          "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00"},
                          "marketing_emails": false},
        "ai": {"personalization_enabled": true, "response_style": "balanced", "preferred_model": null,
               "memory_enabled": true, "data_sharing_consent": false},
        "integrations": {"calendar_sync_enabled": true, "email_sync_enabled": true,
                         "sync_frequency_minutes": 15, "default_calendar_provider": null},
        "privacy": {"profile_visibility": "private", "analytics_opt_in": false,
                    "activity_tracking_enabled": true, "data_retention_days": 365}
    })
}

fn integration() -> Value {
    json!({
        "id": "0193f3a2-7c1e-7000-8000-0000000000a1", "default": true,
        "provider": "google", "status": "active", "account_id": "108234567890",
        "account_email": "ada@gmail.com",
        "scopes": ["openid", "email", "https://www.googleapis.com/auth/calendar.readonly"],
        "connected_at": AT, "expires_at": "2026-11-25T18:02:57Z", "last_refreshed_at": AT,
        "last_checked_at": AT, "last_error": null, "updated_at": AT
    })
}

fn token() -> Value {
    json!({
        "access_token": "ya29.a0Af…", "token_type": "Bearer", "expires_at": "2026-11-25T18:02:57Z",
        "scopes": ["openid", "email"], "provider": "google", "account_id": "108234567890",
        "account_email": "ada@gmail.com", "refreshed": false
    })
}

fn audit_entry() -> Value {
    json!({
        "id": 42, "occurred_at": AT, "actor_type": "user", "actor_id": "user_2abcDEF9",
        "action": "preferences.updated", "user_id": USER_ID, "resource_type": "preferences",
        "resource_id": USER_ID, "outcome": "success", "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0", "request_id": "0193f3a2-7c1e-7000-8000-0000000000aa",
        "details": {"fields": ["ui.theme"]},
        "prev_hash": "9f2c…", "hash": "c41a…"
    })
}

/// The example of the component schema `name`.
#[must_use]
pub fn for_schema(name: &str) -> Option<Value> {
    users_schema(name)
        .or_else(|| integrations_schema(name))
        .or_else(|| operations_schema(name))
}

/// Users and their preferences.
fn users_schema(name: &str) -> Option<Value> {
    let mut document = preferences();
    document["schema_version"] = json!(1);
    document["version"] = json!(7);
    document["updated_at"] = json!(AT);
    Some(match name {
        "UserResource" => user(),
        "UserList" => json!({"items": [user()], "next_cursor": null}),
        "UpdateUser" => json!({"first_name": "Łukasz", "onboarding_step": "connect_google"}),
        "PreferencesDocument" => document,
        "PreferencesExport" => json!({
            "schema_version": 1, "exported_at": AT,
            "preferences": {"ui": {"theme": "dark"}}
        }),
        "PreferencesSchemaBody" => json!({
            "schema": {"$schema": DIALECT, "type": "object"},
            "defaults": preferences()
        }),
        "HistoryBody" => json!({"items": [{
            "version": 7, "schema_version": 1, "changed_at": AT,
            "changed_by": "user:user_2abcDEF9", "changes": {"ui": {"theme": "dark"}}
        }], "next_cursor": null}),
        "RollbackBody" => json!({"version": 3}),
        _ => return None,
    })
}

/// Integrations, the connect flow and tokens.
fn integrations_schema(name: &str) -> Option<Value> {
    Some(match name {
        "IntegrationResource" => integration(),
        "IntegrationList" => json!({"items": [integration(), json!({
            "id": "0193f3a2-7c1e-7000-8000-0000000000a2", "default": false,
            "provider": "google", "status": "active", "account_id": "104444444444",
            "account_email": "ada@work.example", "scopes": ["openid", "email"],
            "connected_at": AT, "expires_at": "2026-11-25T18:02:57Z", "last_refreshed_at": null,
            "last_checked_at": AT, "last_error": null, "updated_at": AT
        })]}),
        "AuthorizeBody" => json!({"scopes": ["openid", "email"]}),
        "AuthorizeAnswer" => json!({
            "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth?client_id=…&state=…",
            "state": "q9Xr2v0…", "expires_at": "2026-11-25T17:12:57Z"
        }),
        "CompleteBody" => json!({"code": "4/0AfJohX…", "state": "q9Xr2v0…"}),
        "ConnectSessionBody" => json!({"provider": "google", "scopes": ["openid", "email"]}),
        "ConnectSessionAnswer" => json!({
            "url": "https://users.example.com/connect/google?session=Zm9vYmFy…",
            "expires_at": "2026-11-25T17:12:57Z"
        }),
        "TokenGetBody" => json!({
            "user_id": "user_2abcDEF9", "provider": "google", "scopes": ["email"],
            "min_validity_seconds": 300
        }),
        "TokenRefreshBody" => json!({
            "user_id": "user_2abcDEF9", "provider": "google", "account_id": "104444444444"
        }),
        "TokenAnswer" => token(),
        "StatsAnswer" => json!({
            "items": [{"provider": "google", "status": "active", "count": 31}],
            "refreshes_24h": {"success": 120, "failure": 2}, "refresh_success_rate_24h": 0.98
        }),
        _ => return None,
    })
}

/// Audit, jobs, event deliveries, webhooks, providers and health.
fn operations_schema(name: &str) -> Option<Value> {
    Some(match name {
        "AuditPage" => json!({"items": [audit_entry()], "next_cursor": "41"}),
        "Stats" => json!({"items": [{"key": "preferences.updated", "count": 12}]}),
        "JobList" => json!({"items": [{
            "name": "purge_users", "schedule": "30 3 * * *", "last_run_at": AT,
            "last_outcome": "succeeded", "last_error": null,
            "next_run_at": "2026-11-26T03:30:00Z", "last_result": {"purged": 2}
        }]}),
        "EnqueuedRun" => json!({"name": "purge_users", "run_id": 17, "status": "pending"}),
        "DeliveryList" => json!({"items": [{
            "id": 9, "event_id": "0193f3a2-7c1e-7000-8000-0000000000bb", "event_type": "user.updated",
            "subscriber_url": "https://hooks.example.com/users", "status": "failed", "attempts": 8,
            "next_attempt_at": AT, "last_status_code": 500, "last_error": "HTTP 500",
            "delivered_at": null, "created_at": AT
        }], "next_cursor": null}),
        "RetriedDelivery" => json!({"id": 9, "status": "pending"}),
        "WebhookAnswer" => json!({"status": "processed"}),
        "ProviderList" => json!({"items": [{
            "name": "google", "display_name": "Google",
            "default_scopes": ["openid", "email", "profile"], "configured": true
        }]}),
        "Health" => json!({"status": "ok", "version": "0.1.0", "database": "ok"}),
        "Ready" => json!({"status": "ready", "database": "ok", "redis": "not_configured"}),
        _ => return None,
    })
}

/// The example of a body with an inline schema, by `METHOD path` and media type.
#[must_use]
pub fn for_operation(method: &str, path: &str, media_type: &str) -> Option<Value> {
    Some(match (method, path, media_type) {
        ("PUT" | "PATCH", "/users/{user_ref}/preferences", _) => {
            json!({"ui": {"theme": "dark"}, "notifications": {"digest_frequency": "daily"}})
        }
        ("POST", "/webhooks/clerk", _) => json!({
            "type": "user.created",
            "data": {"id": "user_2abcDEF9", "primary_email_address_id": "idn_1",
                     "email_addresses": [{"id": "idn_1", "email_address": "ada@example.com"}],
                     "first_name": "Ada", "last_name": "Lovelace", "updated_at": 1_764_090_177_000_i64}
        }),
        ("GET", "/users/{user_ref}/export", _) => json!({
            "format": "user-service/export/v1", "exported_at": AT, "user": user(),
            "preferences": {"schema_version": 1, "version": 7, "overrides": {"ui": {"theme": "dark"}},
                            "updated_at": AT},
            "preference_history": [], "integrations": [], "audit": []
        }),
        ("GET", "/users/{user_ref}/integrations/{provider}/diagnostics", _) => json!({
            "provider": "google", "integration_id": "0193f3a2-7c1e-7000-8000-0000000000a1",
            "account_id": "108234567890", "status": "active", "expires_at": "2026-11-25T18:02:57Z",
            "expires_in_seconds": 3600, "granted_scopes": ["openid", "email"],
            "default_scopes": ["openid", "email", "profile"], "missing_default_scopes": ["profile"],
            "refresh_failures": 0, "last_refreshed_at": AT, "last_refresh_attempt_at": AT,
            "last_error": null, "recent_refreshes": [{"at": AT, "outcome": "success", "error": null}],
            "userinfo_check": {"ok": true}
        }),
        ("GET", "/connect/{provider}" | "/connect/{provider}/callback", "text/html") => json!(
            "<!doctype html><html lang=\"en\">…<p id=\"outcome\" role=\"status\">Your google account is connected. You can close this window.</p>…</html>"
        ),
        ("GET", "/.well-known/jwks.json", _) => json!({"keys": [{
            "kty": "RSA", "kid": "dev-1", "alg": "RS256", "use": "sig", "n": "0vx7agoebGc…", "e": "AQAB"
        }]}),
        ("GET", "/metrics", _) => json!(
            "# TYPE user_service_http_requests_total counter\nuser_service_http_requests_total{route=\"/health\",status=\"200\"} 3\n"
        ),
        ("GET", "/admin/debug/profile", _) => {
            json!("<svg xmlns=\"http://www.w3.org/2000/svg\">…</svg>")
        }
        _ => return None,
    })
}
