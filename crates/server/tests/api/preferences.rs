//! Preferences over HTTP: the document and its `ETag`, PUT/PATCH with `If-Match`, reset,
//! history, rollback, export/import, who may call, the internal read, the public schema.
//! The rules themselves (every field's validation, inheritance, the property test) are
//! tested in `domain` and `app`; here each rule kind is checked through the wire.

use reqwest::{Response, header};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::common::{Backend, TestApp, assert_problem, spawn_app};

both_backends!(
    schema_and_defaults_are_public,
    read_write_with_etags_and_if_match,
    validation_errors_name_the_field_path,
    two_writers_with_the_same_if_match,
    reset_history_and_rollback,
);

mod sharing;

/// The owner's preferences URL and a token for `clerk` (inserted as a user).
async fn owner(app: &TestApp, clerk: &str) -> (String, String) {
    let id = app.insert_user(clerk).await;
    (
        app.url(&format!("/users/{id}/preferences")),
        app.user_token(clerk, false),
    )
}

async fn send(req: reqwest::RequestBuilder) -> Response {
    req.send().await.expect("request")
}

async fn doc(res: Response) -> (String, Value) {
    assert_eq!(res.status(), 200, "status");
    let etag = res
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .expect("ETag")
        .to_owned();
    (etag, res.json().await.expect("json"))
}

async fn schema_and_defaults_are_public(backend: Backend) {
    let app = spawn_app(backend).await;
    // No credentials: the route is public.
    let res = send(app.client.get(app.url("/preferences/schema"))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    let schema = &body["schema"];
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["$defs"]["Theme"]["enum"],
        json!(["light", "dark", "system"])
    );
    assert!(!schema.to_string().contains("#/components/"));
    assert_eq!(body["defaults"]["ui"]["theme"], "system");
    assert_eq!(
        body["defaults"]["integrations"]["sync_frequency_minutes"],
        15
    );
    assert!(body["defaults"]["ai"]["preferred_model"].is_null());

    let doc: Value = send(app.client.get(app.url("/openapi.json")))
        .await
        .json()
        .await
        .expect("json");
    for path in [
        "/preferences/schema",
        "/users/{user_ref}/preferences",
        "/users/{user_ref}/preferences/history",
        "/internal/users/{user_ref}/preferences",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
}

async fn read_write_with_etags_and_if_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let (url, token) = owner(&app, "user_prefs1").await;

    // Before any change: version 0, all defaults; `me` names the caller.
    let (etag, body) = doc(send(
        app.client
            .get(app.url("/users/me/preferences"))
            .bearer_auth(&token),
    )
    .await)
    .await;
    assert_eq!(etag, "\"0\"");
    assert_eq!(body["version"], 0);
    assert_eq!(body["schema_version"], 1);
    assert!(body["updated_at"].is_null());
    assert_eq!(body["ui"]["theme"], "system");
    assert!(body.get("sources").is_none());

    // PUT changes only the keys sent.
    let put = json!({"ui": {"theme": "dark"}, "notifications": {"quiet_hours": {"enabled": true}}});
    let (etag, body) = doc(send(app.client.put(&url).bearer_auth(&token).json(&put)).await).await;
    assert_eq!(etag, "\"1\"");
    assert_eq!(body["ui"]["theme"], "dark");
    assert_eq!(body["ui"]["language"], "en");
    assert_eq!(body["notifications"]["quiet_hours"]["enabled"], true);
    assert_eq!(body["notifications"]["quiet_hours"]["start"], "22:00");

    // ?include=sources says which values are the user's.
    let (_, body) = doc(send(
        app.client
            .get(format!("{url}?include=sources"))
            .bearer_auth(&token),
    )
    .await)
    .await;
    assert_eq!(body["sources"]["ui"]["theme"], "user");
    assert_eq!(body["sources"]["ui"]["language"], "default");
    let res = send(
        app.client
            .get(format!("{url}?include=everything"))
            .bearer_auth(&token),
    )
    .await;
    assert_problem(res, 422, "validation_error").await;

    // A merge patch with the current ETag: `null` falls back to the default.
    let patch = r#"{"ui": {"theme": null}, "privacy": {"profile_visibility": "team"}}"#;
    let res = send(
        app.client
            .patch(&url)
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .header(header::IF_MATCH, "\"1\"")
            .body(patch),
    )
    .await;
    let (etag, body) = doc(res).await;
    assert_eq!(etag, "\"2\"");
    assert_eq!(body["ui"]["theme"], "system");
    assert_eq!(body["privacy"]["profile_visibility"], "team");

    // A stale ETag, a weak one, or a list: 412 and nothing written.
    for stale in ["\"1\"", "W/\"2\"", "\"1\", \"2\""] {
        let res = send(
            app.client
                .put(&url)
                .bearer_auth(&token)
                .header(header::IF_MATCH, stale)
                .json(&json!({"ui": {"theme": "light"}})),
        )
        .await;
        assert_problem(res, 412, "precondition_failed").await;
    }
    let (etag, body) = doc(send(app.client.get(&url).bearer_auth(&token)).await).await;
    assert_eq!(etag, "\"2\"");
    assert_eq!(body["ui"]["theme"], "system");

    // `*` always holds; a change that changes nothing keeps the version.
    let res = send(
        app.client
            .put(&url)
            .bearer_auth(&token)
            .header(header::IF_MATCH, "*")
            .json(&json!({"privacy": {"profile_visibility": "team"}})),
    )
    .await;
    let (etag, _) = doc(res).await;
    assert_eq!(etag, "\"2\"");

    // Not JSON: 415; malformed: 400.
    let res = send(app.client.put(&url).bearer_auth(&token).body("theme=dark")).await;
    assert_problem(res, 415, "unsupported_media_type").await;
    let res = send(
        app.client
            .put(&url)
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/json")
            .body("{\"ui\":"),
    )
    .await;
    assert_problem(res, 400, "invalid_request").await;
}

async fn validation_errors_name_the_field_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let (url, token) = owner(&app, "user_prefs2").await;
    // One rule of each kind: (field path, a valid value, an invalid value).
    let rules: &[(&str, Value, Value)] = &[
        ("ui.theme", json!("light"), json!("purple")),
        ("ui.timezone", json!("Europe/Berlin"), json!("Mars/Olympus")),
        ("ui.language", json!("pt-BR"), json!("not a tag!")),
        ("ui.time_format", json!("12h"), json!("25h")),
        (
            "notifications.quiet_hours.start",
            json!("23:30"),
            json!("24:00"),
        ),
        ("notifications.email_enabled", json!(false), json!("yes")),
        (
            "notifications.digest_frequency",
            json!("daily"),
            json!("hourly"),
        ),
        ("ai.response_style", json!("concise"), json!("verbose")),
        ("integrations.sync_frequency_minutes", json!(1440), json!(4)),
        (
            "integrations.default_calendar_provider",
            json!("microsoft"),
            json!("myspace"),
        ),
        ("privacy.data_retention_days", json!(30), json!(3651)),
        (
            "privacy.profile_visibility",
            json!("public"),
            json!("everyone"),
        ),
    ];
    for (path, valid, invalid) in rules {
        let res = send(
            app.client
                .patch(&url)
                .bearer_auth(&token)
                .json(&nested(path, valid.clone())),
        )
        .await;
        assert_eq!(res.status(), 200, "{path} = {valid}");
        let res = send(
            app.client
                .patch(&url)
                .bearer_auth(&token)
                .json(&nested(path, invalid.clone())),
        )
        .await;
        assert_eq!(res.status(), 422, "{path} = {invalid}");
        let body = assert_problem(res, 422, "validation_error").await;
        assert_eq!(body["errors"][0]["field"], *path, "{body}");
        // The message never echoes the value sent.
        if let Value::String(s) = invalid {
            assert!(!body.to_string().contains(s.as_str()), "{body}");
        }
    }
    // Unknown keys, at any depth, by path; all errors at once.
    let res = send(app.client.put(&url).bearer_auth(&token).json(
        &json!({"ui": {"colour": "red"}, "extra": 1, "privacy": {"data_retention_days": 1}}),
    ))
    .await;
    let body = assert_problem(res, 422, "validation_error").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in ["ui.colour", "extra", "privacy.data_retention_days"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    // Nothing invalid was written: the last valid values stand.
    let (_, body) = doc(send(app.client.get(&url).bearer_auth(&token)).await).await;
    assert_eq!(body["ui"]["theme"], "light");
    assert_eq!(body["privacy"]["data_retention_days"], 30);
}

fn nested(path: &str, leaf: Value) -> Value {
    path.rsplit('.')
        .fold(leaf, |inner, key| json!({ key: inner }))
}

async fn two_writers_with_the_same_if_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let (url, token) = owner(&app, "user_prefs3").await;
    let (etag, _) = doc(send(
        app.client
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({"ui": {"density": "compact"}})),
    )
    .await)
    .await;
    let write = |theme: &'static str| {
        app.client
            .patch(&url)
            .bearer_auth(&token)
            .header(header::IF_MATCH, etag.clone())
            .json(&json!({"ui": {"theme": theme}}))
            .send()
    };
    let (a, b) = tokio::join!(write("dark"), write("light"));
    let mut statuses = [
        a.expect("request").status().as_u16(),
        b.expect("request").status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412]);
    let (etag, body) = doc(send(app.client.get(&url).bearer_auth(&token)).await).await;
    assert_eq!(etag, "\"2\"", "exactly one write landed");
    let history: Value = send(app.client.get(format!("{url}/history")).bearer_auth(&token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"].as_array().map(Vec::len), Some(2));
    let winner = &history["items"][0]["changes"]["ui"]["theme"];
    assert_eq!(body["ui"]["theme"], *winner);
}

async fn reset_history_and_rollback(backend: Backend) {
    let app = spawn_app(backend).await;
    let (url, token) = owner(&app, "user_prefs4").await;
    let changes = [
        json!({"ui": {"theme": "dark", "timezone": "Asia/Tokyo"}}),
        json!({"ai": {"response_style": "detailed"}}),
        json!({"ui": {"theme": "light"}}),
    ];
    for c in &changes {
        let res = send(app.client.patch(&url).bearer_auth(&token).json(c)).await;
        assert_eq!(res.status(), 200);
    }
    // Reset one category: ui goes back, ai stays.
    let (etag, body) = doc(send(
        app.client
            .post(format!("{url}/reset?category=ui"))
            .bearer_auth(&token),
    )
    .await)
    .await;
    assert_eq!(etag, "\"4\"");
    assert_eq!(body["ui"]["theme"], "system");
    assert_eq!(body["ui"]["timezone"], "UTC");
    assert_eq!(body["ai"]["response_style"], "detailed");
    let res = send(
        app.client
            .post(format!("{url}/reset?category=colours"))
            .bearer_auth(&token),
    )
    .await;
    let problem = assert_problem(res, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["field"], "category");

    // History: newest first, each with the merge patch that made it and who made it;
    // paginated by cursor.
    let page: Value = send(
        app.client
            .get(format!("{url}/history?limit=3"))
            .bearer_auth(&token),
    )
    .await
    .json()
    .await
    .expect("json");
    let items = page["items"].as_array().expect("items");
    let versions: Vec<i64> = items.iter().filter_map(|i| i["version"].as_i64()).collect();
    assert_eq!(versions, [4, 3, 2]);
    assert_eq!(items[1]["changes"], changes[2]);
    assert_eq!(
        items[0]["changes"],
        json!({"ui": {"theme": null, "timezone": null}})
    );
    assert_eq!(items[0]["changed_by"], "user:user_prefs4");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest: Value = send(
        app.client
            .get(format!("{url}/history?limit=3&cursor={cursor}"))
            .bearer_auth(&token),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(rest["items"][0]["version"], 1);
    assert_eq!(rest["items"][0]["changes"], changes[0]);
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=101", "cursor=abc"] {
        let res = send(
            app.client
                .get(format!("{url}/history?{bad}"))
                .bearer_auth(&token),
        )
        .await;
        assert_problem(res, 400, "invalid_request").await;
    }

    // Rollback to version 1 makes version 5 with version 1's values.
    let (etag, body) = doc(send(
        app.client
            .post(format!("{url}/rollback"))
            .bearer_auth(&token)
            .json(&json!({"version": 1})),
    )
    .await)
    .await;
    assert_eq!(etag, "\"5\"");
    assert_eq!(body["ui"]["theme"], "dark");
    assert_eq!(body["ui"]["timezone"], "Asia/Tokyo");
    assert_eq!(body["ai"]["response_style"], "balanced");
    let res = send(
        app.client
            .post(format!("{url}/rollback"))
            .bearer_auth(&token)
            .json(&json!({"version": 99})),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    let res = send(
        app.client
            .post(format!("{url}/rollback"))
            .bearer_auth(&token)
            .json(&json!({"version": -1})),
    )
    .await;
    assert_problem(res, 422, "validation_error").await;

    // Full reset: all defaults, a new version.
    let (etag, body) =
        doc(send(app.client.post(format!("{url}/reset")).bearer_auth(&token)).await).await;
    assert_eq!(etag, "\"6\"");
    let defaults: Value = send(app.client.get(app.url("/preferences/schema")))
        .await
        .json()
        .await
        .expect("json");
    for category in ["ui", "notifications", "ai", "integrations", "privacy"] {
        assert_eq!(body[category], defaults["defaults"][category], "{category}");
    }

    // Each change is audited, in the user's audit trail.
    let audit: Value = send(
        app.client
            .get(app.url("/users/me/audit"))
            .bearer_auth(&token),
    )
    .await
    .json()
    .await
    .expect("json");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "preferences.reset",
            "preferences.rolled_back",
            "preferences.reset",
            "preferences.updated",
            "preferences.updated",
            "preferences.updated",
        ]
    );
}
