//! Session tokens against a fake Clerk: a small HTTP server in the test serving the JWKS of
//! an RSA key made here, counting how often it is fetched. The real middleware and
//! extractors run behind test-only probe routes (`spawn_app_with_routes`).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, routing::get};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use server::{
    auth::{
        Principal,
        dev::DevSigningKey,
        extract::{Admin, Authenticated, Service, TokensRead},
    },
    http::AppState,
};
use testkit::{Backend, both_backends};

use crate::common::{TestApp, assert_problem, spawn_app_with_routes};

const ISSUER: &str = "https://clerk.example.test";
const PARTY: &str = "https://app.example.test";

/// Routes that only answer through the auth extractors.
pub fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/test/whoami",
            get(|Authenticated(p): Authenticated| async move { Json(describe(&p)) }),
        )
        .route(
            "/test/admin",
            get(|Admin { principal: p, .. }: Admin| async move { Json(describe(&p)) }),
        )
        .route(
            "/test/tokens",
            get(|s: Service<TokensRead>| async move { s.key.name().to_string() }),
        )
}

fn describe(p: &Principal) -> Value {
    match p {
        Principal::User(u) => json!({"kind": "user", "sub": u.clerk_user_id().as_str(),
            "sid": u.session_id(), "admin": u.admin()}),
        Principal::Service(s) => json!({"kind": "service", "name": s.name()}),
    }
}

/// A fake Clerk JWKS endpoint.
struct FakeClerk {
    url: String,
    hits: Arc<AtomicUsize>,
    jwks: Arc<Mutex<Value>>,
}

async fn fake_clerk(keys: &[&DevSigningKey]) -> FakeClerk {
    let hits = Arc::new(AtomicUsize::new(0));
    let jwks = Arc::new(Mutex::new(json!({
        "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()
    })));
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get({
            let hits = hits.clone();
            let jwks = jwks.clone();
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let body = jwks.lock().expect("lock").clone();
                Json(body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    FakeClerk {
        url: format!("http://{addr}/.well-known/jwks.json"),
        hits,
        jwks,
    }
}

async fn clerk_app(backend: Backend, clerk: &FakeClerk) -> TestApp {
    let app = spawn_app_with_routes(
        backend,
        &[
            ("CLERK_JWKS_URL", &clerk.url),
            ("CLERK_ISSUER", ISSUER),
            ("CLERK_AUTHORIZED_PARTIES", PARTY),
        ],
        probe_routes(),
    )
    .await;
    // The sessions below speak for this user (a session needs a live user).
    app.insert_user("user_2abcDEF").await;
    app
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn good_claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "sub": "user_2abcDEF", "sid": "sess_123", "azp": PARTY,
        "iat": now, "nbf": now, "exp": now + 600, "metadata": {"role": "member"}})
}

fn sign(key: &DevSigningKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key.encoding_key()).expect("signs")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().expect("object").remove(key);
    claims
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn get_with_bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Asserts 401 `unauthorized` with `WWW-Authenticate`, and that the answer never echoes the
/// token.
async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let res = get_with_bearer(app, "/test/whoami", token).await;
    assert!(
        res.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer")),
        "{why}: WWW-Authenticate"
    );
    let body = assert_problem(res, 401, "unauthorized").await;
    let text = body.to_string();
    assert!(!text.contains(token), "{why}: the token is echoed: {text}");
    if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() > 8) {
        assert!(!text.contains(sig), "{why}: the signature is echoed");
    }
}

async fn valid_token_is_accepted_and_malicious_ones_refused(backend: Backend) {
    let key = DevSigningKey::generate().expect("key");
    let clerk = fake_clerk(&[&key]).await;
    let app = clerk_app(backend, &clerk).await;
    assert_eq!(
        clerk.hits.load(Ordering::SeqCst),
        1,
        "JWKS fetched at start"
    );
    let kid = Some(key.kid());

    // Accepted, by header and by cookie.
    let token = sign(&key, kid, &good_claims());
    let res = get_with_bearer(&app, "/test/whoami", &token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["sub"], "user_2abcDEF");
    assert_eq!(body["sid"], "sess_123");
    assert_eq!(body["admin"], false);
    let res = app
        .client
        .get(app.url("/test/whoami"))
        .header("cookie", format!("theme=dark; __session={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "the __session cookie is read");
    // Within the 5 s leeway.
    let barely = sign(&key, kid, &with(good_claims(), "exp", json!(now() - 2)));
    assert_eq!(
        get_with_bearer(&app, "/test/whoami", &barely)
            .await
            .status(),
        200
    );
    // Admin by the claim at ADMIN_ROLE_CLAIM (metadata.role).
    let member = get_with_bearer(&app, "/test/admin", &token).await;
    assert_problem(member, 403, "forbidden").await;
    let admin = sign(
        &key,
        kid,
        &with(good_claims(), "metadata", json!({"role": "admin"})),
    );
    let res = get_with_bearer(&app, "/test/admin", &admin).await;
    assert_eq!(res.status(), 200);
    // A user session on a service route: 403.
    let res = get_with_bearer(&app, "/test/tokens", &token).await;
    assert_problem(res, 403, "forbidden").await;

    let t = now();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": key.kid()})),
        b64(&good_claims())
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(key.kid().to_owned());
    let hmac_with_public_key = jsonwebtoken::encode(
        &hs,
        &good_claims(),
        &EncodingKey::from_secret(key.public_key_pem().as_bytes()),
    )
    .expect("signs");
    let other = DevSigningKey::generate().expect("key");
    let cases: Vec<(&str, String)> = vec![
        ("alg none", none),
        ("HS256 with the RSA public key", hmac_with_public_key),
        (
            "signed by another key under our kid",
            sign(&other, kid, &good_claims()),
        ),
        (
            "expired",
            sign(
                &key,
                kid,
                &json!({"iss": ISSUER, "sub": "user_2abcDEF", "sid": "s",
            "azp": PARTY, "iat": t - 600, "nbf": t - 600, "exp": t - 60}),
            ),
        ),
        (
            "not yet valid",
            sign(&key, kid, &with(good_claims(), "nbf", json!(t + 120))),
        ),
        (
            "issued in the future",
            sign(&key, kid, &with(good_claims(), "iat", json!(t + 120))),
        ),
        (
            "wrong iss",
            sign(
                &key,
                kid,
                &with(good_claims(), "iss", json!("https://evil.test")),
            ),
        ),
        (
            "missing iss",
            sign(&key, kid, &without(good_claims(), "iss")),
        ),
        (
            "wrong azp",
            sign(
                &key,
                kid,
                &with(good_claims(), "azp", json!("https://evil.test")),
            ),
        ),
        (
            "missing azp",
            sign(&key, kid, &without(good_claims(), "azp")),
        ),
        (
            "missing sid",
            sign(&key, kid, &without(good_claims(), "sid")),
        ),
        (
            "missing sub",
            sign(&key, kid, &without(good_claims(), "sub")),
        ),
        (
            "sub not a Clerk id",
            sign(&key, kid, &with(good_claims(), "sub", json!("admin"))),
        ),
        (
            "missing exp",
            sign(&key, kid, &without(good_claims(), "exp")),
        ),
        ("missing kid", sign(&key, None, &good_claims())),
        ("garbage", "not-a-token".to_owned()),
        (
            "garbage segments",
            "eyJhbGciOiJSUzI1NiJ9.e30.AAAA".to_owned(),
        ),
    ];
    for (why, token) in &cases {
        assert_refused(&app, token, why).await;
    }
    // None of those needed the JWKS again.
    assert_eq!(clerk.hits.load(Ordering::SeqCst), 1);

    // Unknown kid: one refetch, then none within 30 s.
    let stranger = DevSigningKey::generate().expect("key");
    let t1 = sign(&stranger, Some("kid-unknown-1"), &good_claims());
    assert_refused(&app, &t1, "unknown kid").await;
    assert_eq!(
        clerk.hits.load(Ordering::SeqCst),
        2,
        "an unknown kid refetches"
    );
    let t2 = sign(&stranger, Some("kid-unknown-2"), &good_claims());
    assert_refused(&app, &t2, "second unknown kid").await;
    assert_refused(&app, &t1, "first unknown kid again").await;
    assert_eq!(
        clerk.hits.load(Ordering::SeqCst),
        2,
        "at most one refetch per 30 s"
    );

    // Public routes keep working with a stale cookie.
    let res = app
        .client
        .get(app.url("/health"))
        .header("cookie", format!("__session={}", &cases[3].1))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    // No credentials at all: 401 with WWW-Authenticate.
    let res = app
        .client
        .get(app.url("/test/whoami"))
        .send()
        .await
        .expect("request");
    assert!(res.headers().contains_key("www-authenticate"));
    assert_problem(res, 401, "unauthorized").await;
}

async fn rotated_key_is_picked_up_by_a_refetch(backend: Backend) {
    let old = DevSigningKey::generate().expect("key");
    let clerk = fake_clerk(&[&old]).await;
    let app = clerk_app(backend, &clerk).await;
    // Clerk rotates: the new key appears in its JWKS after the service fetched it.
    let new = DevSigningKey::generate().expect("key");
    *clerk.jwks.lock().expect("lock") = json!({"keys": [old.jwk(), new.jwk()]});
    let token = sign(&new, Some(new.kid()), &good_claims());
    let res = get_with_bearer(&app, "/test/whoami", &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(clerk.hits.load(Ordering::SeqCst), 2);
}

/// An HMAC key in a JWKS is never used. The verifier here is fresh: its first fetch is of a
/// set holding an RSA key and an `oct` key, so the forged token meets a key set that really
/// contains its key (no refetch budget involved).
async fn hmac_key_in_a_jwks_is_never_used(backend: Backend) {
    let rsa = DevSigningKey::generate().expect("key");
    let secret = b"a shared secret that Clerk would never publish";
    let oct = json!({"kty": "oct", "kid": "hmac", "alg": "HS256",
        "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)});
    let clerk = fake_clerk(&[&rsa]).await;
    clerk
        .jwks
        .lock()
        .expect("lock")
        .get_mut("keys")
        .and_then(Value::as_array_mut)
        .expect("keys")
        .push(oct.clone());
    let app = clerk_app(backend, &clerk).await;
    assert_eq!(clerk.hits.load(Ordering::SeqCst), 1, "the set was fetched");
    // The set is in use: its RSA key signs a session that is accepted.
    let good = sign(&rsa, Some(rsa.kid()), &good_claims());
    assert_eq!(
        get_with_bearer(&app, "/test/whoami", &good).await.status(),
        200
    );

    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("hmac".to_owned());
    let forged = jsonwebtoken::encode(&hs, &good_claims(), &EncodingKey::from_secret(secret))
        .expect("signs");
    // The forgery is genuine: the served `oct` key verifies it, so a verifier that used
    // HMAC keys from the JWKS would accept it and this test would fail.
    let served: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(clerk.jwks.lock().expect("lock").clone()).expect("JWKS");
    let oct_jwk = served
        .find("hmac")
        .expect("the HMAC key is in the served set");
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(
        &forged,
        &jsonwebtoken::DecodingKey::from_jwk(oct_jwk).expect("oct key"),
        &validation,
    )
    .expect("the forged token is valid under the served HMAC key");
    // Both refusals hold: the key set drops the `oct` key, and the token is refused.
    let parsed = server::auth::jwks::KeySet::from_jwks(&served);
    assert!(parsed.get(rsa.kid()).is_some(), "the RSA key is kept");
    assert!(parsed.get("hmac").is_none(), "the HMAC key is dropped");
    assert_refused(&app, &forged, "HMAC key from the JWKS").await;
}

both_backends!(
    valid_token_is_accepted_and_malicious_ones_refused,
    rotated_key_is_picked_up_by_a_refetch,
    hmac_key_in_a_jwks_is_never_used
);
