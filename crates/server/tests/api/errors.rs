use testkit::both_backends;

use crate::common::{Backend, assert_problem, spawn_app};

both_backends!(
    unknown_route_is_problem_404_with_request_id,
    request_ids_sane_or_replaced,
    wrong_method_is_problem_405
);

async fn unknown_route_is_problem_404_with_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "trace-me.1")
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["x-request-id"], "trace-me.1");
    let body = assert_problem(res, 404, "not_found").await;
    assert_eq!(body["instance"], "/no/such/route");
    assert_eq!(body["request_id"], "trace-me.1");
}

async fn request_ids_sane_or_replaced(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id/with spaces")
        .send()
        .await
        .expect("request");
    let rid = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(rid, "bad id/with spaces");
    assert!(
        uuid::Uuid::parse_str(&rid).is_ok(),
        "replaced by a UUID: {rid}"
    );
    let long = "a".repeat(129);
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &long)
        .send()
        .await
        .expect("request");
    assert_ne!(res.headers()["x-request-id"], long.as_str());
}

async fn wrong_method_is_problem_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .delete(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_problem(res, 405, "method_not_allowed").await;
}
