//! Clerk webhooks: signed here with an independent Svix signer (HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with the base64-decoded secret), never with our verifier.

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::store::users::{self, Deleted};
use testkit::{both_backends, fixtures};

use crate::common::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};

both_backends!(
    webhook_bad_signature_is_refused,
    webhook_stale_timestamp_is_refused,
    webhook_replay_is_duplicate,
    webhook_out_of_order_update_changes_nothing,
    webhook_update_before_create_upserts,
    webhook_delete_cascades,
    webhook_unknown_type_ignored_and_session_recorded,
    webhook_rotation_accepts_second_secret,
    webhook_without_secret_is_unavailable,
    webhook_malformed_event_is_refused_and_not_recorded,
);

pub const SECRET_A: &[u8] = b"first-secret-used-for-signing-32";
const SECRET_B: &[u8] = b"second-secret-after-the-rotation";

pub fn whsec(key: &[u8]) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The Svix signature of `body`: `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`.
fn sign(key: &[u8], id: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn spawn(backend: Backend) -> TestApp {
    let secrets = format!("{},{}", whsec(SECRET_A), whsec(SECRET_B));
    spawn_app_with(backend, &[("CLERK_WEBHOOK_SECRET", &secrets)]).await
}

/// Sends `event` as delivery `id`, signed with `key` at `ts`.
async fn deliver_raw(
    app: &TestApp,
    key: &[u8],
    id: &str,
    ts: i64,
    body: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/webhooks/clerk"))
        .header("content-type", "application/json")
        .header("svix-id", id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", sign(key, id, ts, body))
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

/// Delivers a correctly signed event; returns the `status` word.
pub async fn deliver(app: &TestApp, id: &str, event: &Value) -> String {
    let res = deliver_raw(
        app,
        SECRET_A,
        id,
        Utc::now().timestamp(),
        &event.to_string(),
    )
    .await;
    assert_eq!(res.status(), 200, "{id}");
    let body: Value = res.json().await.expect("json");
    body["status"].as_str().expect("status").to_owned()
}

pub fn user_event(kind: &str, clerk_id: &str, first: &str, updated_at_ms: i64) -> Value {
    json!({
        "type": kind,
        "object": "event",
        "data": {
            "id": clerk_id,
            "object": "user",
            "email_addresses": [
                {"id": "idn_other", "email_address": "old@example.com"},
                {"id": "idn_primary", "email_address": "Ada@Example.COM"}
            ],
            "primary_email_address_id": "idn_primary",
            "first_name": first,
            "last_name": "Lovelace",
            "image_url": "https://img.clerk.com/ada.png",
            "created_at": 1_700_000_000_000_i64,
            "updated_at": updated_at_ms
        }
    })
}

pub async fn user(app: &TestApp, clerk_id: &str) -> Option<users::User> {
    users::find_by_clerk_id(
        app.state.app().test_db().writer(),
        clerk_id,
        Deleted::Include,
    )
    .await
    .expect("query")
}

fn by_clerk(action: &str) -> (String, String, Option<String>) {
    (
        action.to_owned(),
        "webhook".to_owned(),
        Some("clerk".to_owned()),
    )
}

async fn webhook_bad_signature_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let body = user_event("user.created", "user_bad", "Ada", 1).to_string();
    let now = Utc::now().timestamp();
    // Signed with a secret the service does not have.
    let res = deliver_raw(&app, b"some-other-secret", "msg_1", now, &body).await;
    assert_problem(res, 401, "invalid_signature").await;
    // A valid signature over a different body.
    let sig = sign(SECRET_A, "msg_2", now, &body);
    let res = app
        .client
        .post(app.url("/webhooks/clerk"))
        .header("svix-id", "msg_2")
        .header("svix-timestamp", now.to_string())
        .header("svix-signature", sig)
        .body(body.replace("Ada", "Eve"))
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "invalid_signature").await;
    // No headers at all.
    let res = app
        .client
        .post(app.url("/webhooks/clerk"))
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "invalid_signature").await;
    assert!(user(&app, "user_bad").await.is_none(), "nothing stored");
}

async fn webhook_stale_timestamp_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let body = user_event("user.created", "user_late", "Ada", 1).to_string();
    let now = Utc::now().timestamp();
    for ts in [now - 301, now + 400] {
        let res = deliver_raw(&app, SECRET_A, "msg_ts", ts, &body).await;
        assert_problem(res, 401, "invalid_signature").await;
    }
    assert!(user(&app, "user_late").await.is_none());
    // Within the window it is accepted.
    let res = deliver_raw(&app, SECRET_A, "msg_ts", now - 200, &body).await;
    assert_eq!(res.status(), 200);
}

async fn webhook_replay_is_duplicate(backend: Backend) {
    let app = spawn(backend).await;
    let ev = user_event("user.created", "user_replay", "Ada", 1_700_000_000_000);
    assert_eq!(deliver(&app, "msg_replay", &ev).await, "processed");
    let u = user(&app, "user_replay").await.expect("created");
    assert_eq!(
        u.email.as_deref(),
        Some("Ada@example.com"),
        "primary address"
    );
    assert_eq!(u.first_name.as_deref(), Some("Ada"));
    assert_eq!(
        u.profile_image_url.as_deref(),
        Some("https://img.clerk.com/ada.png")
    );
    // The same delivery again, and the same id with a newer (validly signed) body.
    assert_eq!(deliver(&app, "msg_replay", &ev).await, "duplicate");
    let changed = user_event("user.updated", "user_replay", "Eve", 1_800_000_000_000);
    assert_eq!(deliver(&app, "msg_replay", &changed).await, "duplicate");
    let after = user(&app, "user_replay").await.expect("still there");
    assert_eq!(after, u, "a redelivery changes nothing");
    assert_eq!(app.audit_of(u.id).await, vec![by_clerk("user.created")]);
}

async fn webhook_out_of_order_update_changes_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let t2 = 1_700_000_200_000;
    deliver(
        &app,
        "msg_c",
        &user_event("user.created", "user_ooo", "Second", t2),
    )
    .await;
    let before = user(&app, "user_ooo").await.expect("created");
    // An older update arrives late: answered, but nothing changes.
    let older = user_event("user.updated", "user_ooo", "First", t2 - 100_000);
    assert_eq!(deliver(&app, "msg_old", &older).await, "processed");
    assert_eq!(user(&app, "user_ooo").await.expect("user"), before);
    // A newer one applies.
    let newer = user_event("user.updated", "user_ooo", "Third", t2 + 1);
    assert_eq!(deliver(&app, "msg_new", &newer).await, "processed");
    let after = user(&app, "user_ooo").await.expect("user");
    assert_eq!(after.first_name.as_deref(), Some("Third"));
    assert_eq!(
        app.audit_of(before.id).await,
        vec![by_clerk("user.created"), by_clerk("user.updated")]
    );
}

async fn webhook_update_before_create_upserts(backend: Backend) {
    let app = spawn(backend).await;
    let t = 1_700_000_500_000;
    let upd = user_event("user.updated", "user_upsert", "Updated", t);
    assert_eq!(deliver(&app, "msg_u", &upd).await, "processed");
    let u = user(&app, "user_upsert")
        .await
        .expect("created by the update");
    assert_eq!(u.first_name.as_deref(), Some("Updated"));
    // The missed create shows up late, with Clerk's older version: no change.
    let create = user_event("user.created", "user_upsert", "Created", t - 1000);
    assert_eq!(deliver(&app, "msg_c", &create).await, "processed");
    assert_eq!(user(&app, "user_upsert").await.expect("user"), u);
    assert_eq!(app.audit_of(u.id).await, vec![by_clerk("user.created")]);
}

async fn webhook_delete_cascades(backend: Backend) {
    let app = spawn(backend).await;
    deliver(
        &app,
        "msg_1",
        &user_event("user.created", "user_gone", "Ada", 1),
    )
    .await;
    deliver(
        &app,
        "msg_2",
        &user_event("user.created", "user_stays", "Bob", 1),
    )
    .await;
    let gone = user(&app, "user_gone").await.expect("user");
    let stays = user(&app, "user_stays").await.expect("user");
    fixtures::integration(gone.id, "google")
        .insert_with_credentials(app.state.app().test_db().writer())
        .await;
    fixtures::integration(gone.id, "microsoft")
        .insert_with_credentials(app.state.app().test_db().writer())
        .await;
    fixtures::integration(stays.id, "google")
        .insert_with_credentials(app.state.app().test_db().writer())
        .await;
    assert_eq!(app.credentials_of(gone.id).await.0, 2);

    let del = json!({"type": "user.deleted", "data": {"id": "user_gone", "deleted": true, "object": "user"}});
    assert_eq!(deliver(&app, "msg_del", &del).await, "processed");
    let after = user(&app, "user_gone").await.expect("kept, soft-deleted");
    assert!(after.deleted_at.is_some());
    assert_eq!(
        app.credentials_of(gone.id).await,
        (
            0,
            0,
            vec!["disconnected".to_owned(), "disconnected".to_owned()]
        )
    );
    assert_eq!(
        app.credentials_of(stays.id).await,
        (1, 1, vec!["active".to_owned()]),
        "other users untouched"
    );
    assert_eq!(
        app.audit_of(gone.id).await,
        vec![by_clerk("user.created"), by_clerk("user.deleted")]
    );
    assert_eq!(deliver(&app, "msg_del", &del).await, "duplicate");
}

async fn webhook_unknown_type_ignored_and_session_recorded(backend: Backend) {
    let app = spawn(backend).await;
    let other = json!({"type": "email.created", "data": {"id": "ema_1"}});
    assert_eq!(deliver(&app, "msg_x", &other).await, "ignored");
    deliver(
        &app,
        "msg_c",
        &user_event("user.created", "user_sess", "Ada", 1),
    )
    .await;
    let signed_in_ms = 1_764_000_000_000_i64;
    let sess = json!({"type": "session.created", "data": {"id": "sess_1", "user_id": "user_sess", "created_at": signed_in_ms}});
    assert_eq!(deliver(&app, "msg_s", &sess).await, "processed");
    let u = user(&app, "user_sess").await.expect("user");
    assert_eq!(
        u.last_sign_in_at.map(|t| t.timestamp_millis()),
        Some(signed_in_ms)
    );
    assert_eq!(
        app.audit_of(u.id).await,
        vec![by_clerk("user.created"), by_clerk("user.updated")]
    );
}

async fn webhook_rotation_accepts_second_secret(backend: Backend) {
    let app = spawn(backend).await;
    let body = user_event("user.created", "user_rot", "Ada", 1).to_string();
    let res = deliver_raw(&app, SECRET_B, "msg_rot", Utc::now().timestamp(), &body).await;
    assert_eq!(res.status(), 200);
    assert!(user(&app, "user_rot").await.is_some());
}

async fn webhook_without_secret_is_unavailable(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = user_event("user.created", "user_nosec", "Ada", 1).to_string();
    let res = deliver_raw(&app, SECRET_A, "msg_n", Utc::now().timestamp(), &body).await;
    let problem = assert_problem(res, 503, "service_unavailable").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("CLERK_WEBHOOK_SECRET")),
        "{problem}"
    );
    assert!(user(&app, "user_nosec").await.is_none());
}

async fn webhook_malformed_event_is_refused_and_not_recorded(backend: Backend) {
    let app = spawn(backend).await;
    let now = Utc::now().timestamp();
    // Verified, but a user event without a valid user id.
    let bad = json!({"type": "user.created", "data": {"id": "not-a-clerk-id"}}).to_string();
    let res = deliver_raw(&app, SECRET_A, "msg_bad", now, &bad).await;
    assert_problem(res, 400, "invalid_request").await;
    let res = deliver_raw(&app, SECRET_A, "msg_bad2", now, "not json").await;
    assert_problem(res, 400, "invalid_request").await;
    // The id was not consumed: a corrected redelivery under it is processed.
    let good = user_event("user.created", "user_fixed", "Ada", 1);
    assert_eq!(deliver(&app, "msg_bad", &good).await, "processed");
}
