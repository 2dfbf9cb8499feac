//! The problem documents clients see, pinned as snapshots (`tests/api/snapshots`): a changed
//! body is a reviewed diff (`cargo insta review`), never a silent one. Both engines must give
//! the same document, so both compare with the same snapshot. The request id and the
//! timestamp are the only fields that differ between runs; they are checked for shape and
//! replaced before comparing.

use reqwest::{RequestBuilder, header};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, spawn_app_with},
    webhooks::{SECRET_A, whsec},
};

both_backends!(problem_documents_are_pinned);

/// Status, media type and body of one answer, the request id and timestamp replaced.
async fn problem(request: RequestBuilder) -> Value {
    let res = request.send().await.expect("request");
    let status = res.status().as_u16();
    let media = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let mut body: Value = res.json().await.expect("a JSON body");
    assert!(body["request_id"].is_string(), "{body}");
    body["request_id"] = json!("[request id]");
    let at = body["timestamp"].as_str().expect("a timestamp");
    chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 timestamp");
    body["timestamp"] = json!("[timestamp]");
    json!({"status": status, "content_type": media, "body": body})
}

async fn problem_documents_are_pinned(backend: Backend) {
    let secret = whsec(SECRET_A);
    let app = spawn_app_with(
        backend,
        &[
            ("MAX_BODY_BYTES", "2048"),
            ("CLERK_WEBHOOK_SECRET", &secret),
        ],
    )
    .await;
    app.insert_user("user_pinned").await;
    let token = app.user_token("user_pinned", false);
    let c = &app.client;
    let me = app.url("/users/me");
    let json_body = |b: &str| {
        c.patch(&me)
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(b.to_owned())
    };
    let cases: Vec<(&str, RequestBuilder)> = vec![
        ("invalid_request", json_body("{not json")),
        ("unauthorized", c.get(&me)),
        (
            "unauthorized_bad_token",
            c.get(&me).bearer_auth("not.a.token"),
        ),
        (
            "invalid_signature",
            c.post(app.url("/webhooks/clerk"))
                .header("svix-id", "msg_1")
                .header("svix-timestamp", "1")
                .header("svix-signature", "v1,AAAA")
                .body("{}"),
        ),
        (
            "forbidden",
            c.get(app.url("/admin/jobs")).bearer_auth(&token),
        ),
        ("not_found", c.get(app.url("/no/such/route"))),
        ("method_not_allowed", c.delete(app.url("/health"))),
        (
            "precondition_failed",
            c.put(app.url("/users/me/preferences"))
                .bearer_auth(&token)
                .header(header::IF_MATCH, "\"99\"")
                .json(&json!({"ui": {"theme": "light"}})),
        ),
        (
            "payload_too_large",
            json_body(&format!("{{\"first_name\": \"{}\"}}", "a".repeat(4096))),
        ),
        (
            "unsupported_media_type",
            c.patch(&me)
                .bearer_auth(&token)
                .header(header::CONTENT_TYPE, "text/plain")
                .body("{}"),
        ),
        ("validation_error", json_body("{\"first_name\": 7}")),
    ];
    for (name, request) in cases {
        insta::assert_json_snapshot!(name, problem(request).await);
    }
}
