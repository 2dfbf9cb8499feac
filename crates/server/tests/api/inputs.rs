//! Hostile text at the edge (issue 14, item 2): NUL and control characters, over-long
//! values and over-long lists are refused before anything reaches the database, naming
//! the field (400 for queries and paths, 422 for bodies), on every route that takes text;
//! names in every script still round-trip.

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::both_backends;

use crate::common::{Backend, TestApp, assert_problem, spawn_app_with};

both_backends!(
    hostile_text_is_refused_naming_the_field,
    names_in_every_script_round_trip,
);

const SECRET: &[u8] = b"input-tests-webhook-secret-32byt";

async fn spawn(backend: Backend) -> TestApp {
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET)
    );
    spawn_app_with(
        backend,
        &[
            ("CLERK_WEBHOOK_SECRET", whsec.as_str()),
            ("RATE_LIMIT_USER_PER_MINUTE", "100000"),
            ("RATE_LIMIT_SERVICE_PER_MINUTE", "100000"),
        ],
    )
    .await
}

/// A Clerk event signed the Svix way (independently of our verifier).
async fn deliver(app: &TestApp, id: &str, event: &Value) -> reqwest::Response {
    let body = event.to_string();
    let ts = Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    app.client
        .post(app.url("/webhooks/clerk"))
        .header("content-type", "application/json")
        .header("svix-id", id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", format!("v1,{sig}"))
        .body(body)
        .send()
        .await
        .expect("request")
}

enum Caller {
    Admin,
    Service,
}

struct Case {
    method: &'static str,
    path: String,
    body: Option<Value>,
    caller: Caller,
    status: u16,
    field: &'static str,
}

fn case(method: &'static str, path: &str, status: u16, field: &'static str) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body: None,
        caller: Caller::Admin,
        status,
        field,
    }
}

fn body(method: &'static str, path: &str, body: Value, field: &'static str) -> Case {
    Case {
        body: Some(body),
        ..case(method, path, 422, field)
    }
}

fn service(path: &str, b: Value, field: &'static str) -> Case {
    Case {
        caller: Caller::Service,
        ..body("POST", path, b, field)
    }
}

#[allow(clippy::too_many_lines)] // One table of every route that takes text.
fn cases() -> Vec<Case> {
    let long_query = "a".repeat(1025);
    let many_scopes: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
    vec![
        // Query parameters.
        case("GET", "/users?q=a%00b", 400, "q"),
        case("GET", "/users?q=a%0Ab", 400, "q"),
        case("GET", &format!("/users?q={long_query}"), 400, "q"),
        case("GET", "/users?cursor=%01", 400, "cursor"),
        case("GET", "/audit?actor_id=svc%00", 400, "actor_id"),
        case("GET", "/audit?action=user.updated%7F", 400, "action"),
        case("GET", "/audit?cursor=%C2%85", 400, "cursor"),
        case("GET", "/audit/stats?group_by=day%00", 400, "group_by"),
        case(
            "GET",
            "/admin/events/deliveries?status=failed%00",
            400,
            "status",
        ),
        case("GET", "/users/me/audit?cursor=1%00", 400, "cursor"),
        case(
            "GET",
            "/users/me/preferences?include=sources%00",
            400,
            "include",
        ),
        case(
            "GET",
            "/users/me/preferences/history?cursor=%00",
            400,
            "cursor",
        ),
        case(
            "POST",
            "/users/me/preferences/reset?category=u%00i",
            400,
            "category",
        ),
        // Path segments.
        case("GET", "/users/user_a%00b", 400, "user_ref"),
        case(
            "GET",
            &format!("/users/{}", "u".repeat(300)),
            400,
            "user_ref",
        ),
        case(
            "GET",
            "/users/me/integrations/goo%00gle/diagnostics",
            400,
            "provider",
        ),
        case("DELETE", "/users/me/integrations/g%0D", 400, "provider"),
        case("POST", "/admin/jobs/purge%00users/run", 400, "name"),
        case("POST", "/admin/events/deliveries/1%00/retry", 400, "id"),
        case("POST", "/admin/events/deliveries/one/retry", 400, "id"),
        // JSON bodies.
        body(
            "PATCH",
            "/users/me",
            json!({"first_name": "a\u{0}b"}),
            "first_name",
        ),
        body(
            "PUT",
            "/users/me",
            json!({"last_name": "x".repeat(9000)}),
            "last_name",
        ),
        body(
            "PUT",
            "/users/me/preferences",
            json!({"ui": {"timezone": "Europe/Ber\u{0}lin"}}),
            "ui.timezone",
        ),
        body(
            "PATCH",
            "/users/me/preferences",
            json!({"ai": {"preferred_model": "gpt\u{1b}[31m"}}),
            "ai.preferred_model",
        ),
        body(
            "POST",
            "/users/me/preferences/import",
            json!({"schema_version": 1, "preferences": {"ui": {"language": "e\u{0}n"}}}),
            "preferences.ui.language",
        ),
        body(
            "POST",
            "/users/me/integrations/google/authorize",
            json!({"scopes": ["openid\u{0}"]}),
            "scopes[0]",
        ),
        body(
            "POST",
            "/users/me/integrations/google/authorize",
            json!({ "scopes": many_scopes }),
            "scopes",
        ),
        body(
            "POST",
            "/users/me/integrations/google/authorize",
            json!({"redirect_uri": "https://app.example.com/\u{0}"}),
            "redirect_uri",
        ),
        body(
            "POST",
            "/users/me/integrations/google",
            json!({"code": "c\u{0}", "state": "s"}),
            "code",
        ),
        body(
            "POST",
            "/users/me/integrations/google",
            json!({"code": "c", "state": "s".repeat(300)}),
            "state",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a", "provider": "goo\u{0}gle"}),
            "provider",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a", "provider": "p".repeat(10_000)}),
            "provider",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a\u{0}", "provider": "google"}),
            "user_id",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a", "provider": "google", "scopes": many_scopes}),
            "scopes",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a", "provider": "google", "scopes": ["s".repeat(300)]}),
            "scopes[0]",
        ),
        service(
            "/internal/tokens/get",
            json!({"user_id": "user_a", "provider": "google", "scopes": ["a b"]}),
            "scopes[0]",
        ),
        service(
            "/internal/tokens/refresh",
            json!({"user_id": "user_a", "provider": "google\n"}),
            "provider",
        ),
    ]
}

async fn send(app: &TestApp, c: &Case, admin: &str, key: &str) -> reqwest::Response {
    // The path goes out as written: reqwest must not normalize the percent escapes.
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).expect("method");
    let mut req = app.client.request(method, app.url(&c.path));
    req = match c.caller {
        Caller::Admin => req.bearer_auth(admin),
        Caller::Service => req.header("x-api-key", key),
    };
    if let Some(b) = &c.body {
        req = req.json(b);
    }
    req.send().await.expect("request")
}

async fn hostile_text_is_refused_naming_the_field(backend: Backend) {
    let app = spawn(backend).await;
    app.insert_user("user_hostile1").await;
    let admin = app.user_token("user_hostile1", true);
    let key = app
        .service_key("inputs", &["tokens:read", "tokens:refresh"])
        .await;
    for c in cases() {
        let res = send(&app, &c, &admin, &key).await;
        let kind = if c.status == 400 {
            "invalid_request"
        } else {
            "validation_error"
        };
        let label = format!(
            "{} {}",
            c.method,
            c.path.chars().take(80).collect::<String>()
        );
        assert_eq!(res.status().as_u16(), c.status, "{label}");
        let problem = assert_problem(res, c.status, kind).await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: no errors in {problem}"))
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&c.field), "{label}: {problem}");
        assert!(
            !problem.to_string().contains("\\u0000"),
            "{label}: the answer echoes the NUL: {problem}"
        );
    }
    // Clerk's events: a field the service stores is checked; free-form metadata it never
    // stores is not.
    let hostile = json!({"type": "user.created", "data": {
        "id": "user_hostile2", "first_name": "Ada\u{0}", "email_addresses": []}});
    let res = deliver(&app, "msg_hostile_1", &hostile).await;
    let problem = assert_problem(res, 422, "validation_error").await;
    assert_eq!(
        problem["errors"][0]["field"], "data.first_name",
        "{problem}"
    );
    let metadata = json!({"type": "user.created", "data": {
        "id": "user_hostile3", "first_name": "Ada", "email_addresses": [],
        "unsafe_metadata": {"bio": "line one\nline two\u{0}"}}});
    let res = deliver(&app, "msg_hostile_2", &metadata).await;
    assert_eq!(res.status().as_u16(), 200);
    // The survivor of all this: the hostile user was never created, nothing half-written.
    let res = app
        .client
        .get(app.url("/users/user_hostile2"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_problem(res, 404, "not_found").await;
}

const NAMES: [(&str, &str); 6] = [
    ("Łukasz", "Żółkiewski"),
    ("李小龍", "李"),
    ("محمد", "عبد الله"),
    ("Zoë 🦀", "O'Brien-Åsa"),
    ("नमस्ते", "👩‍💻"),
    ("Ἀθηνᾶ", "Ёжиков"),
];

async fn names_in_every_script_round_trip(backend: Backend) {
    let app = spawn(backend).await;
    app.insert_user("user_intl0").await;
    let admin = app.user_token("user_intl0", true);
    for (i, (first, last)) in NAMES.iter().enumerate() {
        // Through the API: PATCH, then read back exactly.
        let clerk = format!("user_intlapi{i}");
        app.insert_user(&clerk).await;
        let token = app.user_token(&clerk, false);
        let res = app
            .client
            .patch(app.url("/users/me"))
            .bearer_auth(&token)
            .json(&json!({"first_name": first, "last_name": last}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 200, "{first}");
        let user = app.get_json("/users/me", &token).await;
        assert_eq!(user["first_name"], *first);
        assert_eq!(user["last_name"], *last);
        // Through Clerk's webhook.
        let clerk = format!("user_intlhook{i}");
        let event = json!({"type": "user.created", "data": {
            "id": clerk, "first_name": first, "last_name": last,
            "primary_email_address_id": "e1",
            "email_addresses": [{"id": "e1", "email_address": format!("{clerk}@example.com")}]}});
        let res = deliver(&app, &format!("msg_intl_{i}"), &event).await;
        assert_eq!(res.status().as_u16(), 200, "{first}");
        let user = app.get_json(&format!("/users/{clerk}"), &admin).await;
        assert_eq!(user["first_name"], *first);
        assert_eq!(user["last_name"], *last);
        // And found by the admin search, spelled as stored.
        let q = url::form_urlencoded::byte_serialize(first.as_bytes()).collect::<String>();
        let page = app
            .get_json(&format!("/users?q={q}&limit=100"), &admin)
            .await;
        let found = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|u| u["first_name"] == *first)
            .count();
        assert_eq!(found, 2, "search for {first}: {page}");
    }
}
