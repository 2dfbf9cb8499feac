//! Browser headers and the origin rule (docs/security.md "Browser headers and origin
//! rule"): every answer carries nosniff, `X-Frame-Options`, `no-store` and a CSP (the API's
//! allows nothing, `/docs` only its own files), and a write authenticated by the
//! `__session` cookie needs an `Origin` among `CORS_ALLOWED_ORIGINS`.

use reqwest::Method;
use testkit::{Backend, both_backends};

use crate::common::{TestApp, assert_problem, spawn_app, spawn_app_with};

both_backends!(cookie_writes_need_an_allowed_origin);

const FRONT_END: &str = "https://app.example.test";

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} on {}", res.url()))
}

fn assert_browser_headers(res: &reqwest::Response, csp: &str) {
    assert_eq!(header(res, "x-content-type-options"), "nosniff");
    assert_eq!(header(res, "x-frame-options"), "DENY");
    assert_eq!(header(res, "cache-control"), "no-store");
    assert_eq!(header(res, "content-security-policy"), csp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_browser_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let api = "default-src 'none'; frame-ancestors 'none'";
    for (path, status) in [
        ("/health", 200),
        ("/openapi.json", 200),
        ("/users/me", 401),
        ("/no/such/route", 404),
    ] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status().as_u16(), status, "{path}");
        assert_browser_headers(&res, api);
    }
    // The Swagger UI: its own scripts, styles and images, the document from this origin;
    // still nothing inline, nothing from elsewhere, never framed.
    for path in [
        "/docs/",
        "/docs/swagger-initializer.js",
        "/docs/swagger-ui.css",
    ] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        let csp = header(&res, "content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
    }
}

async fn write(app: &TestApp, auth: Auth<'_>, origin: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .request(Method::PATCH, app.url("/users/me"))
        .json(&serde_json::json!({"first_name": "Ada"}));
    req = match auth {
        Auth::Cookie(t) => req.header("cookie", format!("__session={t}")),
        Auth::Bearer(t) => req.bearer_auth(t),
    };
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.expect("request")
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
}

async fn cookie_writes_need_an_allowed_origin(backend: Backend) {
    let app = spawn_app_with(backend, &[("CORS_ALLOWED_ORIGINS", FRONT_END)]).await;
    app.insert_user("user_cookie1").await;
    let token = app.user_token("user_cookie1", false);

    // A cross-site form post carries the cookie; without our Origin it is refused.
    let res = write(&app, Auth::Cookie(&token), None).await;
    let body = assert_problem(res, 403, "forbidden").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Origin"),
        "{body}"
    );
    let res = write(&app, Auth::Cookie(&token), Some("https://evil.example")).await;
    assert_problem(res, 403, "forbidden").await;
    let res = write(&app, Auth::Cookie(&token), Some("null")).await;
    assert_problem(res, 403, "forbidden").await;
    // Our front end, and a Bearer header (which no foreign page can attach).
    let res = write(&app, Auth::Cookie(&token), Some(FRONT_END)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), FRONT_END);
    let res = write(&app, Auth::Bearer(&token), None).await;
    assert_eq!(res.status(), 200);
    let res = write(&app, Auth::Bearer(&token), Some("https://evil.example")).await;
    assert_eq!(res.status(), 200, "the origin rule is for the cookie only");
    // Reads with the cookie need no Origin (a foreign page cannot read the answer).
    let res = app
        .client
        .get(app.url("/users/me"))
        .header("cookie", format!("__session={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    // Nothing was written by the refused requests: one update, by the allowed ones.
    let entries = testkit::store::audit::list(
        app.state.app().test_db().reader(),
        &testkit::store::audit::AuditFilter {
            action: Some("user.updated".into()),
            ..Default::default()
        },
        100,
    )
    .await
    .expect("audit");
    assert_eq!(
        entries.len(),
        1,
        "the first allowed write changed the name, the rest nothing"
    );
}
