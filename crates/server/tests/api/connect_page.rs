//! The hosted connect page over HTTP, without a browser (scripts/test.d/47-connect-page.sh
//! drives a real one): session creation (owner only, provider rules), the whole flow
//! through the fake provider's consent screen, single use (also under a race), expiry,
//! callbacks that must fail, callbacks of flows the purge job deleted, and no secret in
//! any page.

use reqwest::{Response, header};
use sea_orm::{ColumnTrait, EntityTrait as _, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::{
    common::{Backend, TestApp, assert_problem},
    connected::{app_with_env, post},
    fake_provider::FakeProvider,
};

both_backends!(
    the_page_connects_through_the_provider_and_tells_the_opener,
    sessions_are_for_owners_and_known_providers,
    a_session_opens_once_and_not_after_it_expires,
    callbacks_that_the_page_did_not_start_fail_with_a_page,
    callbacks_of_purged_flows_are_refused_as_expired_ones,
);

const ORIGIN: &str = "http://127.0.0.1:5173";

/// An app whose PUBLIC_URL is its own address (the port is chosen first), with Google at
/// the fake and the connect origin set.
async fn page_app(backend: Backend, fake: &FakeProvider) -> (TestApp, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (listen, public) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let app = app_with_env(
        backend,
        fake,
        &["google", "github"],
        &[
            ("LISTEN_ADDR", &listen),
            ("PUBLIC_URL", &public),
            ("CONNECT_ORIGIN", ORIGIN),
        ],
    )
    .await;
    (app, public)
}

/// A client that shows redirects instead of following them, as the tests follow by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn new_session(app: &TestApp, token: &str, body: Value) -> Value {
    let res = post(app, token, "/users/me/connect-sessions", body).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body
}

/// The page URL of a new session for Google with its default scopes.
async fn google_page(app: &TestApp, token: &str) -> String {
    new_session(app, token, json!({"provider": "google"})).await["url"]
        .as_str()
        .expect("url")
        .to_owned()
}

fn location(res: &Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

/// An ordinary authorize of Google (the front end's own callback), consented at the fake:
/// its code and state.
async fn consented(app: &TestApp, fake: &FakeProvider, token: &str) -> (String, String) {
    let res = post(
        app,
        token,
        "/users/me/integrations/google/authorize",
        json!({}),
    )
    .await;
    let start: Value = res.json().await.expect("json");
    fake.consent(start["authorization_url"].as_str().expect("url"))
}

/// An HTML page: its status, CSP and body.
async fn html(res: Response, status: u16) -> (String, String) {
    assert_eq!(res.status(), status);
    let ct = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ct")
        .to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        res.headers().get(header::LOCATION).is_none(),
        "a page, no redirect"
    );
    let body = res.text().await.expect("body");
    assert!(body.contains(r#"<html lang="en">"#) && body.contains("<title>"));
    assert!(
        body.contains(r#"id="close""#),
        "a button for when there is no opener"
    );
    (csp, body)
}

async fn the_page_connects_through_the_provider_and_tells_the_opener(backend: Backend) {
    let fake = FakeProvider::start().await;
    let (app, public) = page_app(backend, &fake).await;
    let id = app.insert_user("user_ada").await;
    let token = app.user_token("user_ada", false);
    let session = new_session(&app, &token, json!({"provider": "google"})).await;
    let url = session["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("{public}/connect/google?session=")),
        "{url}"
    );
    let secret = url.rsplit('=').next().expect("secret").to_owned();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(session["expires_at"].clone()).expect("expires_at");
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(9) && ttl <= chrono::Duration::minutes(10));

    let client = browser();
    let res = client.get(&url).send().await.expect("page");
    assert_eq!(res.status(), 302);
    let to_provider = location(&res);
    assert!(
        to_provider.starts_with(&fake.url("/authorize")),
        "{to_provider}"
    );
    let q: std::collections::HashMap<String, String> = url::Url::parse(&to_provider)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        q["redirect_uri"],
        format!("{public}/connect/google/callback")
    );
    assert!(!q["state"].is_empty() && q.contains_key("code_challenge"));

    let res = client.get(&to_provider).send().await.expect("consent");
    assert_eq!(res.status(), 302);
    let back = location(&res);
    assert!(
        back.starts_with(&format!("{public}/connect/google/callback?")),
        "{back}"
    );
    let res = client.get(&back).send().await.expect("callback");
    let (_, body) = html(res, 200).await;
    assert!(
        body.contains("window.opener.postMessage(outcome, origin)"),
        "{body}"
    );
    assert!(
        body.contains(&format!("var origin = \"{ORIGIN}\";")),
        "{body}"
    );
    assert!(!body.contains("\"*\""), "never every origin");
    assert!(
        body.contains(
            r#"{"provider":"google","status":"connected","type":"user-service:connect"}"#
        ),
        "{body}"
    );
    assert!(body.contains("account is connected"));
    // No secret: not the session, the code, the state, nor any token the fake issued.
    let issued = fake.inner.lock().expect("lock").issued.clone();
    for s in issued.iter().chain([&secret, &q["state"]]) {
        assert!(!body.contains(s.as_str()), "secret in the page");
    }
    assert!(!body.contains("code-"), "the code in the page");

    let list = app.get_json("/users/me/integrations", &token).await;
    assert_eq!(list["items"][0]["provider"], "google");
    assert_eq!(list["items"][0]["status"], "active");
    let (tokens, _, _) = app.credentials_of(id).await;
    assert_eq!(tokens, 2, "access and refresh token sealed");
    let key = app.service_key("mailer", &["tokens:read"]).await;
    let res = app
        .client
        .post(app.url("/internal/tokens/get"))
        .bearer_auth(&key)
        .json(&json!({"user_id": id, "provider": "google"}))
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.expect("json");
    assert!(
        issued
            .iter()
            .any(|t| Some(t.as_str()) == got["access_token"].as_str())
    );
    // The same audit entry as completing it through the API: the user is the actor.
    let audit = app.audit_of(id).await;
    assert!(
        audit.contains(&(
            "integration.connected".to_owned(),
            "user".to_owned(),
            Some("user_ada".to_owned())
        )),
        "{audit:?}"
    );
}

async fn sessions_are_for_owners_and_known_providers(backend: Backend) {
    let fake = FakeProvider::start().await;
    let (app, _) = page_app(backend, &fake).await;
    app.insert_user("user_ada").await;
    let bob = app.insert_user("user_bob").await;
    let token = app.user_token("user_ada", false);
    let res = post(
        &app,
        &token,
        &format!("/users/{bob}/connect-sessions"),
        json!({"provider": "google"}),
    )
    .await;
    assert_problem(res, 403, "forbidden").await;
    let res = post(
        &app,
        &token,
        "/users/me/connect-sessions",
        json!({"provider": "nope"}),
    )
    .await;
    assert_problem(res, 404, "not_found").await;
    // Microsoft is in the catalog but has no client here.
    let res = post(
        &app,
        &token,
        "/users/me/connect-sessions",
        json!({"provider": "microsoft"}),
    )
    .await;
    assert_problem(res, 409, "conflict").await;
    let res = post(
        &app,
        &token,
        "/users/me/connect-sessions",
        json!({"scopes": ["x"]}),
    )
    .await;
    assert!(res.status().is_client_error(), "provider is required");
    let res = app
        .client
        .post(app.url("/users/me/connect-sessions"))
        .json(&json!({"provider": "google"}))
        .send()
        .await
        .expect("request");
    assert_problem(res, 401, "unauthorized").await;
    // Scopes asked for are the ones the flow asks for.
    let s = new_session(
        &app,
        &token,
        json!({"provider": "google", "scopes": ["openid", "calendar"]}),
    )
    .await;
    let res = browser()
        .get(s["url"].as_str().expect("url"))
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), 302);
    let scope = url::Url::parse(&location(&res))
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(scope.as_deref(), Some("openid calendar"));
}

async fn a_session_opens_once_and_not_after_it_expires(backend: Backend) {
    let fake = FakeProvider::start().await;
    let (app, public) = page_app(backend, &fake).await;
    app.insert_user("user_ada").await;
    let token = app.user_token("user_ada", false);
    let client = browser();

    // Two browsers race for one session: exactly one is sent on.
    let url = google_page(&app, &token).await;
    let (a, b) = tokio::join!(client.get(&url).send(), client.get(&url).send());
    let mut statuses = [
        a.expect("a").status().as_u16(),
        b.expect("b").status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, [302, 410]);
    let (_, body) = html(client.get(&url).send().await.expect("again"), 410).await;
    assert!(body.contains("already been used"), "{body}");
    assert!(body.contains(r#""error":"session_used""#));
    assert!(
        !body.contains(url.rsplit('=').next().expect("secret")),
        "no secret echoed"
    );

    // Expired before it was opened.
    let url = google_page(&app, &token).await;
    testkit::store::entities::connect_sessions::Entity::update_many()
        .col_expr(
            testkit::store::entities::connect_sessions::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(testkit::store::entities::connect_sessions::Column::UsedAt.is_null())
        .exec(app.state.app().test_db().writer())
        .await
        .expect("expire");
    let (_, body) = html(client.get(&url).send().await.expect("expired"), 410).await;
    assert!(body.contains("has expired"), "{body}");

    // Unknown, missing, or made for another provider.
    let wrong = url.replace("/connect/google?", "/connect/github?");
    for u in [
        format!("{public}/connect/google?session=forged"),
        format!("{public}/connect/google"),
        wrong,
    ] {
        let (_, body) = html(client.get(&u).send().await.expect("unknown"), 400).await;
        assert!(body.contains("not valid"), "{u}: {body}");
    }
    let (_, body) = html(
        client
            .get(format!("{public}/connect/nope?session=x"))
            .send()
            .await
            .expect("nope"),
        404,
    )
    .await;
    assert!(body.contains(r#""error":"not_found""#), "{body}");
}

async fn callbacks_that_the_page_did_not_start_fail_with_a_page(backend: Backend) {
    let fake = FakeProvider::start().await;
    let (app, public) = page_app(backend, &fake).await;
    let id = app.insert_user("user_ada").await;
    let token = app.user_token("user_ada", false);
    let client = browser();
    let cb = format!("{public}/connect/google/callback");

    let (_, body) = html(
        client
            .get(format!("{cb}?code=c&state=forged"))
            .send()
            .await
            .expect("forged"),
        400,
    )
    .await;
    assert!(
        body.contains(r#""status":"error""#) && body.contains(r#""error":"invalid_request""#),
        "{body}"
    );
    let (_, body) = html(
        client
            .get(format!("{cb}?error=access_denied&state=s"))
            .send()
            .await
            .expect("denied"),
        400,
    )
    .await;
    assert!(body.contains(r#""error":"access_denied""#), "{body}");
    let (_, body) = html(
        client
            .get(format!("{cb}?error=%3Cb%3Ex&state=s"))
            .send()
            .await
            .expect("odd"),
        400,
    )
    .await;
    assert!(
        body.contains(r#""error":"provider_error""#) && !body.contains("<b>"),
        "{body}"
    );

    // The state of an ordinary authorize (the front end's own callback) is not the page's.
    let (code, state) = consented(&app, &fake, &token).await;
    let (_, body) = html(
        client
            .get(format!("{cb}?code={code}&state={state}"))
            .send()
            .await
            .expect("foreign"),
        400,
    )
    .await;
    assert!(body.contains(r#""error":"invalid_request""#), "{body}");
    let (tokens, _, _) = app.credentials_of(id).await;
    assert_eq!(tokens, 0, "nothing connected");

    // A state used once: the second callback fails, the first connected.
    let url = google_page(&app, &token).await;
    let to_provider = location(&client.get(&url).send().await.expect("page"));
    let back = location(&client.get(&to_provider).send().await.expect("consent"));
    html(client.get(&back).send().await.expect("callback"), 200).await;
    let (_, body) = html(client.get(&back).send().await.expect("replay"), 400).await;
    assert!(body.contains(r#""error":"invalid_request""#), "{body}");
}

/// Every OAuth state and connect session expired `minutes` ago.
async fn age_flows(app: &TestApp, minutes: i64) {
    use testkit::store::entities::{connect_sessions, oauth_states};
    let (w, at) = (
        app.state.app().test_db().writer(),
        chrono::Utc::now() - chrono::Duration::minutes(minutes),
    );
    oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::ExpiresAt, Expr::value(at))
        .exec(w)
        .await
        .expect("age states");
    connect_sessions::Entity::update_many()
        .col_expr(connect_sessions::Column::ExpiresAt, Expr::value(at))
        .exec(w)
        .await
        .expect("age sessions");
}

/// The rows left: (OAuth states, connect sessions).
async fn flow_rows(app: &TestApp) -> (usize, usize) {
    use testkit::store::entities::{connect_sessions, oauth_states};
    let w = app.state.app().test_db().writer();
    let states = oauth_states::Entity::find().all(w).await.expect("states");
    let sessions = connect_sessions::Entity::find()
        .all(w)
        .await
        .expect("sessions");
    (states.len(), sessions.len())
}

/// The answer to completing an ordinary flow: status, problem type and detail.
async fn complete(app: &TestApp, token: &str, code: &str, state: &str) -> (u16, Value, Value) {
    let res = post(
        app,
        token,
        "/users/me/integrations/google",
        json!({"code": code, "state": state}),
    )
    .await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("json");
    (status, body["type"].clone(), body["detail"].clone())
}

async fn callbacks_of_purged_flows_are_refused_as_expired_ones(backend: Backend) {
    let fake = FakeProvider::start().await;
    let (app, _) = page_app(backend, &fake).await;
    let id = app.insert_user("user_ada").await;
    let token = app.user_token("user_ada", false);
    let client = browser();
    // A page flow and an ordinary one, consented but expired two hours ago (past the
    // hour's grace, and the page's ten minutes more); then a fresh flow.
    let url = google_page(&app, &token).await;
    let to_provider = location(&client.get(&url).send().await.expect("page"));
    let page_back = location(&client.get(&to_provider).send().await.expect("consent"));
    let (code, state) = consented(&app, &fake, &token).await;
    age_flows(&app, 120).await;
    let (live_code, live_state) = consented(&app, &fake, &token).await;
    let (_, expired_page) = html(client.get(&page_back).send().await.expect("cb"), 400).await;
    let expired = complete(&app, &token, &code, &state).await;
    assert_eq!(expired.0, 400, "{expired:?}");
    assert_eq!(flow_rows(&app).await, (3, 1));

    let runner = app.state.jobs();
    let run = runner
        .enqueue_now("purge_expired_flows")
        .await
        .expect("enqueue");
    let done = runner.run_until_idle().await.expect("run");
    let ours = done.iter().find(|o| o.run_id == run).expect("our run");
    assert_eq!(ours.outcome, "succeeded", "{ours:?}");
    assert_eq!(
        flow_rows(&app).await,
        (1, 0),
        "only the fresh state is left"
    );

    // Refused exactly as when the rows were there, expired.
    let (_, purged_page) = html(client.get(&page_back).send().await.expect("cb"), 400).await;
    assert_eq!(purged_page, expired_page);
    assert_eq!(complete(&app, &token, &code, &state).await, expired);
    // The fresh flow was left alone and completes.
    assert_eq!(complete(&app, &token, &live_code, &live_state).await.0, 200);
    let (tokens, _, _) = app.credentials_of(id).await;
    assert!(tokens > 0, "connected by the fresh flow only");
}
