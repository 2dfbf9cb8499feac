//! Traces and correlated logs, end to end: a request carrying a W3C `traceparent` is
//! exported (to a small OTLP/HTTP receiver in this test) as a span with that parent; the
//! JWKS fetch it causes (to a fake Clerk) is a child span and sends the same trace id in its
//! own `traceparent`; and the request's log lines hold the response's request id and the
//! trace id. The subscriber is process-wide: nextest runs each test in its own process.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, body::Bytes, http::HeaderMap, routing::get, routing::post};
use jsonwebtoken::{Algorithm, Header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::{Value, json};
use server::{auth::dev::DevSigningKey, config::LogFormat, telemetry};
use testkit::Backend;

use crate::common::spawn_app_with;

const ISSUER: &str = "https://clerk.example.test";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// An exported span: ids in hex.
#[derive(Clone, Debug)]
struct Exported {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP (protobuf) trace receiver on port 0; returns its base URL and the spans.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Exported>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let router = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| async move {
            let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
            let mut out = sink.lock().expect("lock");
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        out.push(Exported {
                            trace_id: hex(&s.trace_id),
                            span_id: hex(&s.span_id),
                            parent: hex(&s.parent_span_id),
                            name: s.name,
                        });
                    }
                }
            }
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), spans)
}

/// A fake Clerk JWKS: empty at the first fetch (startup), `key` afterwards, so the first
/// request with that key's `kid` makes the service fetch inside the request. Records the
/// `traceparent` of every fetch.
async fn fake_clerk(key: &DevSigningKey) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let jwk = key.jwk();
    let router = Router::new().route(
        "/jwks.json",
        get(move |headers: HeaderMap| async move {
            let tp = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut log = log.lock().expect("lock");
            let first = log.is_empty();
            log.push(tp);
            Json(if first {
                json!({"keys": []})
            } else {
                json!({"keys": [jwk]})
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/jwks.json"), seen)
}

#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_flows_through_spans_outgoing_calls_and_logs() {
    let (otlp, spans_seen) = otlp_receiver().await;
    let logs = Capture::default();
    let writer = logs.clone();
    let telemetry = Arc::new(
        telemetry::init_with_writer(
            &telemetry::Settings {
                log_format: LogFormat::Json,
                log_dir: None,
                log_retention_days: 1,
                otlp_endpoint: Some(otlp),
            },
            move || writer.clone(),
        )
        .expect("telemetry installs"),
    );
    let key = DevSigningKey::generate().expect("key");
    let (jwks_url, fetches) = fake_clerk(&key).await;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("CLERK_JWKS_URL", &jwks_url), ("CLERK_ISSUER", ISSUER)],
    )
    .await;
    app.insert_user("user_traced1").await;
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    let claims = json!({"iss": ISSUER, "sub": "user_traced1", "sid": "sess_1",
        "iat": now, "nbf": now, "exp": now + 600});
    let token = jsonwebtoken::encode(&header, &claims, key.encoding_key()).expect("signs");

    let res = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    // The fetch inside the request carried our trace id (the one at startup had no trace).
    let fetches = fetches.lock().expect("lock").clone();
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    let outgoing_tp = fetches[1].clone().expect("traceparent on the JWKS fetch");
    let parts: Vec<&str> = outgoing_tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{outgoing_tp}");
    assert_eq!(parts[1], TRACE_ID, "same trace id on the outgoing call");
    let outgoing_span = parts[2].to_owned();

    // Export what is finished (blocks on the receiver, which this runtime serves). The
    // request's span closes when the server's task finishes, which may be just after the
    // client has the answer: flush until it is there.
    let mut spans = Vec::new();
    for _ in 0..100 {
        let t = telemetry.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .expect("flush");
        spans = spans_seen.lock().expect("lock").clone();
        if spans.iter().any(|s| s.name == "GET /users/{user_ref}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request_span = spans
        .iter()
        .find(|s| s.name == "GET /users/{user_ref}")
        .unwrap_or_else(|| panic!("no request span in {spans:#?}"));
    assert_eq!(request_span.trace_id, TRACE_ID);
    assert_eq!(
        request_span.parent, PARENT_SPAN,
        "the caller's span is the parent"
    );
    let fetch_span = spans
        .iter()
        .find(|s| s.span_id == outgoing_span)
        .unwrap_or_else(|| panic!("no span {outgoing_span} in {spans:#?}"));
    assert_eq!(fetch_span.name, "GET clerk_jwks");
    assert_eq!(fetch_span.trace_id, TRACE_ID);
    // Beneath the request: follow parents up from the fetch.
    let mut cursor = fetch_span.clone();
    while cursor.span_id != request_span.span_id {
        cursor = spans
            .iter()
            .find(|s| s.span_id == cursor.parent)
            .unwrap_or_else(|| panic!("{cursor:?} is not under the request span"))
            .clone();
    }
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id == TRACE_ID && s.name.starts_with("db ")),
        "database spans in the trace: {spans:#?}"
    );

    // Logs: the access line and the JWKS line inside the request both name request and trace.
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ours = |l: &&Value| l["request_id"] == request_id.as_str() && l["trace_id"] == TRACE_ID;
    assert!(
        lines
            .iter()
            .filter(ours)
            .any(|l| l["target"] == "http" && l["status"] == 200),
        "access line with request and trace id in:\n{text}"
    );
    assert!(
        lines
            .iter()
            .filter(ours)
            .any(|l| l["message"] == "fetched the Clerk JWKS"),
        "a line logged inside the request carries both ids:\n{text}"
    );
}

/// `LOG_DIR`: the same JSON lines go to a daily file, the request's line with its ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dir_gets_daily_json_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let telemetry = telemetry::init_with_writer(
        &telemetry::Settings {
            log_format: LogFormat::Text,
            log_dir: Some(dir.path().join("logs")),
            log_retention_days: 2,
            otlp_endpoint: None,
        },
        std::io::sink,
    )
    .expect("telemetry installs");
    let app = spawn_app_with(Backend::Sqlite, &[]).await;
    let res = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    app.shutdown().await.expect("clean shutdown");
    // Dropping the telemetry flushes the file writer's queue.
    drop(telemetry);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        name.starts_with("user-service.") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).expect("read");
    let line = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .find(|l| l["target"] == "http" && l["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no access line for {request_id} in:\n{text}"));
    let trace_id = line["trace_id"].as_str().unwrap_or_default();
    assert_eq!(
        trace_id.len(),
        32,
        "a W3C trace id without any exporter: {line}"
    );
}
