use testkit::both_backends;

use crate::common::{Backend, spawn_app};

both_backends!(
    health_reports_database,
    ready_when_migrated,
    openapi_is_3_1_and_docs_served
);

async fn health_reports_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

async fn ready_when_migrated(backend: Backend) {
    let app = spawn_app(backend).await;
    let body: serde_json::Value = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "database": "ok", "redis": "not_configured",
            "database_replica": "not_configured"})
    );
}

async fn openapi_is_3_1_and_docs_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/health", "/ready"] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let docs = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .expect("request");
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("html");
    assert!(html.contains("swagger"), "Swagger UI page");
    // Served from the binary: the page references no CDN.
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn."),
        "no CDN in {html}"
    );
}
