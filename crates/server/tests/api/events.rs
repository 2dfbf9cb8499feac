//! Events out: every change stores its event with it, and the dispatcher delivers them to
//! a subscriber (a small HTTP server here) signed the Standard Webhooks way: verified with
//! the `standardwebhooks` verifier, retried after a 500 with the same id and body, kept as
//! failed after the last attempt, and never sent for a change that did not happen.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem, spawn_app_with},
    connected::connect,
    fake_provider::FakeProvider,
    webhooks::{SECRET_A, deliver, user_event, whsec},
};

both_backends!(
    changes_arrive_signed_in_order,
    a_failed_delivery_is_retried_with_the_same_id,
    a_delivery_ends_failed_after_the_last_attempt,
    refused_changes_send_nothing,
);

mod workers;

const KEY_ONE: &[u8] = b"subscriber-one-signing-secret-32";
const KEY_TWO: &[u8] = b"subscriber-two-signing-secret-32";

/// A subscriber: records what arrives, answers with the queued statuses (then 204).
#[derive(Clone, Default)]
struct Subscriber {
    addr: Option<SocketAddr>,
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Subscriber {
    async fn start() -> Self {
        let mut s = Self::default();
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        s.addr = Some(listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        s
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr.expect("started"))
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().expect("lock").extend(statuses);
    }

    fn received(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().expect("lock").clone()
    }
}

async fn receive(State(s): State<Subscriber>, headers: HeaderMap, body: String) -> StatusCode {
    s.got.lock().expect("lock").push((headers, body));
    let status = s.answers.lock().expect("lock").pop_front().unwrap_or(204);
    StatusCode::from_u16(status).expect("status")
}

async fn app_for(
    backend: Backend,
    subscribers: &[(&Subscriber, &[u8])],
    extra: &[(&str, &str)],
) -> TestApp {
    let subs: Vec<Value> = subscribers
        .iter()
        .map(|(s, key)| json!({"url": s.url(), "secret": whsec(key)}))
        .collect();
    let subs = Value::Array(subs).to_string();
    let clerk = whsec(SECRET_A);
    let mut env = vec![
        ("WEBHOOK_SUBSCRIBERS", subs.as_str()),
        ("CLERK_WEBHOOK_SECRET", clerk.as_str()),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(backend, &env).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).expect(name)
}

/// The body's `type`, after checking the signature with the subscriber's own key.
fn verified_type(key: &[u8], (headers, body): &(HeaderMap, String)) -> String {
    standardwebhooks::Webhook::new(&whsec(key))
        .expect("secret")
        .verify(body.as_bytes(), headers)
        .expect("a valid Standard Webhooks signature");
    let v: Value = serde_json::from_str(body).expect("json body");
    v["type"].as_str().expect("type").to_owned()
}

async fn patch_me(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn changes_arrive_signed_in_order(backend: Backend) {
    let (one, two) = (Subscriber::start().await, Subscriber::start().await);
    let fake = FakeProvider::start().await;
    let mut env: Vec<(String, String)> = fake.env("google");
    env.push(("OAUTH_REDIRECT_URI".into(), "https://app.example/cb".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = app_for(backend, &[(&one, KEY_ONE), (&two, KEY_TWO)], &pairs).await;

    // Created by Clerk, then changed through every kind of route.
    assert_eq!(
        deliver(
            &app,
            "msg_ev1",
            &user_event("user.created", "user_ev1", "Ada", 1)
        )
        .await,
        "processed"
    );
    let token = app.user_token("user_ev1", false);
    let res = patch_me(&app, &token, "/users/me", json!({"first_name": "Grace"})).await;
    assert_eq!(res.status(), 200);
    let res = patch_me(
        &app,
        &token,
        "/users/me/preferences",
        json!({"ui": {"theme": "dark"}}),
    )
    .await;
    assert_eq!(res.status(), 200);
    connect(&app, &fake, &token, "google").await;
    let res = app
        .client
        .delete(app.url("/users/me/integrations/google"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert!(res.status().is_success());

    let report = app.state.events().deliver_due().await.expect("deliver");
    assert_eq!(
        (report.delivered, report.retried, report.failed),
        (10, 0, 0)
    );
    let want = [
        "user.created",
        "user.updated",
        "preferences.updated",
        "integration.connected",
        "integration.disconnected",
    ];
    for (sub, key, other) in [(&one, KEY_ONE, KEY_TWO), (&two, KEY_TWO, KEY_ONE)] {
        let got = sub.received();
        let mut types: Vec<String> = got.iter().map(|r| verified_type(key, r)).collect();
        // Sent concurrently: order by the event's own time, as a subscriber would.
        let mut by_time: Vec<(String, String)> = got
            .iter()
            .map(|(_, b)| {
                let v: Value = serde_json::from_str(b).expect("json");
                (
                    v["timestamp"].as_str().expect("ts").to_owned(),
                    v["type"].as_str().expect("t").to_owned(),
                )
            })
            .collect();
        by_time.sort();
        assert_eq!(
            by_time.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            want
        );
        types.sort();
        assert_eq!(types.len(), want.len());
        // The other subscriber's key does not verify: each is signed for its receiver.
        let wrong = standardwebhooks::Webhook::new(&whsec(other)).expect("secret");
        assert!(wrong.verify(got[0].1.as_bytes(), &got[0].0).is_err());
        for (headers, body) in &got {
            assert!(header(headers, "webhook-signature").starts_with("v1,"));
            assert_eq!(header(headers, "content-type"), "application/json");
            let v: Value = serde_json::from_str(body).expect("json");
            let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
            assert_eq!(keys, ["data", "timestamp", "type"]);
            assert!(v["data"]["user_id"].is_string());
            assert!(
                chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().expect("ts")).is_ok()
            );
            // No token of the provider rides along.
            for t in &fake.inner.lock().expect("lock").issued {
                assert!(!body.contains(t.as_str()));
            }
        }
    }
    let body_of = |t: &str| -> Value {
        one.received()
            .iter()
            .map(|(_, b)| serde_json::from_str::<Value>(b).expect("json"))
            .find(|v| v["type"] == t)
            .expect(t)
    };
    assert_eq!(body_of("user.created")["data"]["clerk_user_id"], "user_ev1");
    assert_eq!(
        body_of("user.updated")["data"]["fields"],
        json!(["first_name"])
    );
    let prefs = body_of("preferences.updated");
    assert_eq!(prefs["data"]["version"], 1);
    assert_eq!(prefs["data"]["changed"], json!(["ui.theme"]));
    assert_eq!(
        body_of("integration.connected")["data"]["provider"],
        "google"
    );
    assert_eq!(
        body_of("integration.disconnected")["data"]["revocation"],
        "revoked"
    );
    // Delivered once: a second pass sends nothing.
    let again = app.state.events().deliver_due().await.expect("deliver");
    assert_eq!(again.delivered + again.retried + again.failed, 0);
    let delivered = app
        .state
        .app()
        .event_deliveries(&app.admin_key_holder().await, Some("delivered"), None, 100)
        .await
        .expect("deliveries");
    assert_eq!(delivered.len(), 10);
    assert!(
        delivered
            .iter()
            .all(|d| d.attempts == 1 && d.last_status_code == Some(204))
    );
}

async fn a_failed_delivery_is_retried_with_the_same_id(backend: Backend) {
    let sub = Subscriber::start().await;
    let app = app_for(
        backend,
        &[(&sub, KEY_ONE)],
        &[("WEBHOOK_RETRY_BASE_DELAY_MS", "2000")],
    )
    .await;
    sub.answer(&[500]);
    deliver(
        &app,
        "msg_ev2",
        &user_event("user.created", "user_ev2", "Ada", 1),
    )
    .await;
    let events = app.state.events();
    // A frozen clock: the retry time is exactly the base delay plus its jitter, however
    // slow the machine is.
    let t0 = events.clock().now();
    events.clock().set(t0);
    let first = events.deliver_due().await.expect("deliver");
    assert_eq!((first.delivered, first.retried), (0, 1));
    let pending = app
        .state
        .app()
        .event_deliveries(&app.admin_key_holder().await, Some("pending"), None, 10)
        .await
        .expect("deliveries");
    assert_eq!(pending.len(), 1);
    let d = &pending[0];
    assert_eq!((d.attempts, d.last_status_code), (1, Some(500)));
    assert_eq!(d.last_error.as_deref(), Some("the subscriber answered 500"));
    // The base delay, plus at most a quarter of jitter.
    let wait = d.next_attempt_at - t0;
    assert!(
        wait >= chrono::Duration::milliseconds(2000)
            && wait <= chrono::Duration::milliseconds(2500),
        "{wait}"
    );
    // Not due yet: nothing is sent.
    assert_eq!(events.deliver_due().await.expect("deliver").retried, 0);
    assert_eq!(sub.received().len(), 1);
    // Due: delivered, with the same message id and body, freshly signed.
    events
        .clock()
        .set(d.next_attempt_at + chrono::Duration::seconds(1));
    let second = events.deliver_due().await.expect("deliver");
    assert_eq!(second.delivered, 1);
    let got = sub.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        header(&got[0].0, "webhook-id"),
        header(&got[1].0, "webhook-id")
    );
    assert_eq!(got[0].1, got[1].1);
    assert_eq!(verified_type(KEY_ONE, &got[1]), "user.created");
    let delivered = app
        .state
        .app()
        .event_deliveries(&app.admin_key_holder().await, Some("delivered"), None, 10)
        .await
        .expect("deliveries");
    assert_eq!(delivered[0].attempts, 2);
    assert!(delivered[0].delivered_at.is_some());
}

async fn a_delivery_ends_failed_after_the_last_attempt(backend: Backend) {
    let sub = Subscriber::start().await;
    let app = app_for(
        backend,
        &[(&sub, KEY_ONE)],
        &[
            ("WEBHOOK_RETRY_BASE_DELAY_MS", "1000"),
            ("WEBHOOK_MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    sub.answer(&[500, 503, 500]);
    deliver(
        &app,
        "msg_ev3",
        &user_event("user.created", "user_ev3", "Ada", 1),
    )
    .await;
    let events = app.state.events();
    let mut at = chrono::Utc::now();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = events.deliver_due().await.expect("deliver");
        outcomes.push((r.delivered, r.retried, r.failed));
        at += chrono::Duration::hours(1);
        events.clock().set(at);
    }
    assert_eq!(
        outcomes,
        [(0, 1, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0), (0, 0, 0)]
    );
    assert_eq!(sub.received().len(), 3);
    let failed = app
        .state
        .app()
        .event_deliveries(&app.admin_key_holder().await, Some("failed"), None, 10)
        .await
        .expect("deliveries");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].attempts, failed[0].last_status_code),
        (3, Some(500))
    );
    assert!(failed[0].delivered_at.is_none());

    // Operators see it, and send it again once the subscriber is fixed.
    app.insert_user("user_admin1").await;
    let admin = app.user_token("user_admin1", true);
    let list = app
        .get_json("/admin/events/deliveries?status=failed", &admin)
        .await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["event_type"], "user.created");
    assert_eq!(items[0]["last_error"], "the subscriber answered 500");
    assert_eq!(items[0]["subscriber_url"], sub.url());
    let id = items[0]["id"].as_i64().expect("id");
    let user = app.user_token("user_ev3", false);
    let res = app
        .client
        .get(app.url("/admin/events/deliveries"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("request");
    assert_problem(res, 403, "forbidden").await;
    for bad in ["status=lost", "limit=0", "cursor=abc", "colour=red"] {
        let res = app
            .client
            .get(app.url(&format!("/admin/events/deliveries?{bad}")))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 400, "{bad}");
    }
    let retry = |id: i64| {
        app.client
            .post(app.url(&format!("/admin/events/deliveries/{id}/retry")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(retry(id).await.expect("request").status(), 202);
    assert_problem(retry(id).await.expect("request"), 409, "conflict").await;
    assert_problem(retry(id + 1000).await.expect("request"), 404, "not_found").await;
    events.clock().set(chrono::Utc::now());
    assert_eq!(events.deliver_due().await.expect("deliver").delivered, 1);
    let got = sub.received();
    assert_eq!(got.len(), 4);
    assert_eq!(verified_type(KEY_ONE, &got[3]), "user.created");
}

async fn refused_changes_send_nothing(backend: Backend) {
    let sub = Subscriber::start().await;
    let app = app_for(backend, &[(&sub, KEY_ONE)], &[]).await;
    let id = app.insert_user("user_ev4").await;
    let token = app.user_token("user_ev4", false);
    // Invalid, stale and no-op changes: no event.
    let res = patch_me(
        &app,
        &token,
        "/users/me/preferences",
        json!({"ui": {"theme": "plaid"}}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = app
        .client
        .put(app.url("/users/me/preferences"))
        .bearer_auth(&token)
        .header("if-match", "\"7\"")
        .json(&json!({"ui": {"theme": "dark"}}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 412);
    let res = patch_me(&app, &token, "/users/me", json!({})).await;
    assert_eq!(res.status(), 200);
    let stored = app
        .state
        .app()
        .events_for_user(domain::UserId::from_uuid(id))
        .await
        .expect("events");
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(
        app.state
            .events()
            .deliver_due()
            .await
            .expect("deliver")
            .delivered,
        0
    );
    assert!(sub.received().is_empty());
}

/// The events stored about the user with Clerk id `clerk`: (type, data), oldest first.
pub async fn stored(app: &TestApp, clerk: &str) -> Vec<(String, Value)> {
    let u = testkit::store::users::find_by_clerk_id(
        app.state.app().test_db().writer(),
        clerk,
        testkit::store::users::Deleted::Include,
    )
    .await
    .expect("query")
    .expect("user");
    app.state.app().events_for_user(u.id).await.expect("events")
}
