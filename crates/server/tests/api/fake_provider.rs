//! A small OAuth 2.0 provider for tests, faked at the HTTP boundary only: it really checks
//! the client credentials, the redirect URI and PKCE (S256), issues single-use codes,
//! rotates refresh tokens (a replayed one is `invalid_grant`), revokes (RFC 7009), and
//! serves user info for live access tokens, and a provider API under `/api/` that takes
//! only live access tokens and echoes what it received (for the provider proxy). Tokens
//! are long and distinctive so tests can grep for them in storage and logs. Each consent
//! signs in as an account (`acct-42` unless a test chooses another with
//! [`FakeProvider::sign_in_as`]), and each account has a grant of its own.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "fake-client";
pub const CLIENT_SECRET: &str = "fake-client-secret-value";

/// What a test can inspect and steer.
#[derive(Default)]
pub struct Inner {
    /// code → (PKCE challenge, redirect URI, scope, account)
    codes: HashMap<String, (Option<String>, String, String, String)>,
    /// live access tokens
    access: Vec<String>,
    /// access token → the account it was issued to
    account_of: HashMap<String, String>,
    /// account → the current refresh token of its grant (rotated on each refresh)
    refresh: HashMap<String, String>,
    /// The account the next consents sign in as (`acct-42` when `None`).
    signed_in: Option<String>,
    /// every token ever issued, for grepping
    pub issued: Vec<String>,
    pub token_calls: usize,
    pub refresh_calls: usize,
    pub revoked: Vec<String>,
    /// Answer the next token calls with this status (and `error` body) instead.
    pub fail_next: Vec<(StatusCode, &'static str)>,
    /// Refresh answers carry no `refresh_token` and keep the grant's (as Google does).
    pub omit_refresh: bool,
    /// `Retry-After` seconds sent with the failures of `fail_next`.
    pub retry_after: Option<u64>,
    /// How long the token endpoint takes (widens race windows in concurrency tests).
    pub delay: std::time::Duration,
    /// Holds every token answer until the test opens the gate ([`FakeProvider::hold_token_answers`]).
    gate: Option<Gate>,
    counter: usize,
    /// Every call the API (`/api/…`) received, refused ones included.
    pub api_calls: Vec<ApiCall>,
    /// Answer the next API calls with this status (and `Retry-After` seconds) instead.
    pub api_fail_next: Vec<(StatusCode, Option<u64>)>,
    /// How long the API takes to answer.
    pub api_delay: std::time::Duration,
}

/// One call the fake API received.
#[derive(Clone, Debug)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names, lower case.
    pub headers: Vec<String>,
    /// Whether it carried a live access token.
    pub authorized: bool,
    /// The account its access token was issued to, if it was one of ours.
    pub account: Option<String>,
}

/// A gate in front of the token endpoint's answers: a request that reaches the fake waits
/// there, with its connection open, until the test lets it through. Tests use it to act
/// (disconnect, delete the user, drop the request) while a provider call is in flight.
#[derive(Clone)]
pub struct Gate {
    arrived: Arc<tokio::sync::Semaphore>,
    open: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    /// Waits until a token request is held at the gate (at most 10 s).
    pub async fn arrived(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.arrived.acquire())
            .await
            .expect("a token request reached the provider within 10 s")
            .expect("the gate is open for business")
            .forget();
    }

    /// Lets `n` held (or future) token requests be answered.
    pub fn open(&self, n: usize) {
        self.open.add_permits(n);
    }

    async fn pass(&self) {
        self.arrived.add_permits(1);
        if let Ok(permit) = self.open.acquire().await {
            permit.forget();
        }
    }
}

#[derive(Clone)]
pub struct FakeProvider {
    pub addr: SocketAddr,
    pub inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/userinfo", get(userinfo))
            .route("/api/{*rest}", any(api))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, inner }
    }

    /// From now on every token answer waits at the returned gate.
    pub fn hold_token_answers(&self) -> Gate {
        let gate = Gate {
            arrived: Arc::new(tokio::sync::Semaphore::new(0)),
            open: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        self.inner.lock().expect("lock").gate = Some(gate.clone());
        gate
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The provider stops taking the access tokens issued so far (revoked, or expired
    /// early at its end); the refresh token stays good.
    pub fn revoke_access_tokens(&self) {
        self.inner.lock().expect("lock").access.clear();
    }

    /// The next consents sign in as `account` (its user info: `sub` = `account`, email
    /// `account@provider.test`).
    pub fn sign_in_as(&self, account: &str) {
        self.inner.lock().expect("lock").signed_in = Some(account.to_owned());
    }

    /// Every API call received so far.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.inner.lock().expect("lock").api_calls.clone()
    }

    /// Environment that points provider `name` of the catalog at this fake.
    pub fn env(&self, name: &str) -> Vec<(String, String)> {
        let upper = name.to_ascii_uppercase();
        vec![
            (format!("OAUTH_{upper}_CLIENT_ID"), CLIENT_ID.to_owned()),
            (
                format!("OAUTH_{upper}_CLIENT_SECRET"),
                CLIENT_SECRET.to_owned(),
            ),
            (
                format!("OAUTH_{upper}_AUTHORIZE_URL"),
                self.url("/authorize"),
            ),
            (format!("OAUTH_{upper}_TOKEN_URL"), self.url("/token")),
            (format!("OAUTH_{upper}_REVOKE_URL"), self.url("/revoke")),
            (format!("OAUTH_{upper}_USERINFO_URL"), self.url("/userinfo")),
            (format!("OAUTH_{upper}_API_BASE_URL"), self.url("/api")),
        ]
    }

    /// The user consents on the authorization URL: a code bound to its PKCE challenge,
    /// redirect URI and scope. Returns (code, state from the URL).
    pub fn consent(&self, authorization_url: &str) -> (String, String) {
        let url = url::Url::parse(authorization_url).expect("authorization URL");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        consent_to(&self.inner, &q)
    }
}

/// The consent screen a browser reaches (the connect page's pop-up): the user consents at
/// once, and is sent back to the redirect URI with the code and state.
async fn authorize(
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let q = parse_form(raw.as_deref().unwrap_or_default());
    let (code, state) = consent_to(&inner, &q);
    let mut to =
        url::Url::parse(q.get("redirect_uri").map_or("", String::as_str)).expect("redirect_uri");
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

fn consent_to(inner: &Mutex<Inner>, q: &HashMap<String, String>) -> (String, String) {
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    let mut inner = inner.lock().expect("lock");
    inner.counter += 1;
    let code = format!("code-{}", inner.counter);
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() {
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
    }
    let account = inner
        .signed_in
        .clone()
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned());
    inner.codes.insert(
        code.clone(),
        (
            challenge,
            q.get("redirect_uri").cloned().unwrap_or_default(),
            q.get("scope").cloned().unwrap_or_default(),
            account,
        ),
    );
    (code, q.get("state").cloned().unwrap_or_default())
}

fn parse_form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let post = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|d| d == format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
    post || basic
}

/// The account a consent signs in as unless a test chose another.
pub const DEFAULT_ACCOUNT: &str = "acct-42";

fn issue(inner: &mut Inner, scope: &str, account: &str) -> Value {
    inner.counter += 1;
    let n = inner.counter;
    let access = format!("AT-{n}-{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("RT-{n}-{}", uuid::Uuid::new_v4().simple());
    inner.access.push(access.clone());
    inner.account_of.insert(access.clone(), account.to_owned());
    inner.refresh.insert(account.to_owned(), refresh.clone());
    inner.issued.push(access.clone());
    inner.issued.push(refresh.clone());
    json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
           "refresh_token": refresh, "scope": scope})
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = parse_form(&body);
    let (delay, gate) = {
        let inner = inner.lock().expect("lock");
        (inner.delay, inner.gate.clone())
    };
    tokio::time::sleep(delay).await;
    if let Some(gate) = gate {
        gate.pass().await;
    }
    let mut inner = inner.lock().expect("lock");
    inner.token_calls += 1;
    if !client_ok(&headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if let Some((status, error)) = (!inner.fail_next.is_empty()).then(|| inner.fail_next.remove(0))
    {
        let mut res = oauth_error(status, error);
        if let Some(secs) = inner.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        return res;
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect, scope, account)) = inner.codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if form.get("redirect_uri") != Some(&redirect) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
            Json(issue(&mut inner, &scope, &account)).into_response()
        }
        Some("refresh_token") => {
            inner.refresh_calls += 1;
            let given = form.get("refresh_token");
            let Some(account) = grant_of(&inner, given) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let mut answer = issue(&mut inner, "openid email", &account);
            if let (true, Some(given)) = (inner.omit_refresh, given) {
                // The grant keeps its refresh token; the answer names none.
                inner.refresh.insert(account, given.clone());
                if let Some(o) = answer.as_object_mut() {
                    o.remove("refresh_token");
                }
            }
            Json(answer).into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let form = parse_form(&body);
    let mut inner = inner.lock().expect("lock");
    if !client_ok(&headers, &form) {
        return StatusCode::UNAUTHORIZED;
    }
    let token = form.get("token").cloned().unwrap_or_default();
    if let Some(account) = grant_of(&inner, Some(&token)) {
        // The refresh token ends its account's grant, and only that one.
        inner.refresh.remove(&account);
        let Inner {
            access, account_of, ..
        } = &mut *inner;
        access.retain(|t| account_of.get(t) != Some(&account));
    }
    inner.access.retain(|t| *t != token);
    inner.revoked.push(token);
    StatusCode::OK
}

async fn userinfo(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let inner = inner.lock().expect("lock");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !inner.access.iter().any(|t| t == token) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let account = inner
        .account_of
        .get(token)
        .map_or(DEFAULT_ACCOUNT, String::as_str);
    let email = if account == DEFAULT_ACCOUNT {
        "someone@provider.test".to_owned()
    } else {
        format!("{account}@provider.test")
    };
    Json(json!({"sub": account, "email": email, "name": "Someone"})).into_response()
}

/// The account whose grant's current refresh token is `token`.
fn grant_of(inner: &Inner, token: Option<&String>) -> Option<String> {
    let token = token?;
    inner
        .refresh
        .iter()
        .find(|(_, t)| *t == token)
        .map(|(account, _)| account.clone())
}

/// The provider's API: a live access token or 401; `big/<n>` answers n bytes; anything
/// else echoes the method, path, query, header names and body (length and SHA-256, and
/// the text when short). Answers carry a cookie and a header of their own.
async fn api(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let delay = inner.lock().expect("lock").api_delay;
    tokio::time::sleep(delay).await;
    let mut inner = inner.lock().expect("lock");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorized = inner.access.iter().any(|t| t == token);
    let account = inner.account_of.get(token).cloned();
    inner.api_calls.push(ApiCall {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.keys().map(|k| k.as_str().to_owned()).collect(),
        authorized,
        account,
    });
    if !inner.api_fail_next.is_empty() {
        let (status, retry_after) = inner.api_fail_next.remove(0);
        let mut res = (status, Json(json!({"error": "slow down"}))).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        return res;
    }
    if !authorized {
        let mut res = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return res;
    }
    let mut res = if let Some(n) = uri.path().strip_prefix("/api/big/") {
        let n: usize = n.parse().unwrap_or(0);
        vec![b'x'; n].into_response()
    } else {
        let text = std::str::from_utf8(&body).ok().filter(|t| t.len() <= 1024);
        Json(json!({
            "method": method.as_str(), "path": uri.path(), "query": uri.query(),
            "headers": headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            "body_len": body.len(), "body_sha256": hex(&Sha256::digest(&body)), "body": text,
        }))
        .into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::SET_COOKIE,
        axum::http::HeaderValue::from_static("provider_session=s3cr3t"),
    );
    h.insert("x-provider", axum::http::HeaderValue::from_static("fake"));
    res
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
