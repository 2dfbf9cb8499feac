//! The request-context middleware, one pass per request: request id (the caller's when
//! sane, else a new UUID), a tracing span carrying it and the trace id (the caller's W3C
//! `traceparent` is its parent), HTTP metrics, security headers (docs/security.md "Browser
//! headers and origin rule"), the rendering of every error answer as problem+json, and
//! exactly one access-log line (none for `/metrics`).

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use super::error::{ApiError, render};

/// The request id header, in and out.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, for handlers, audit entries and logs.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text (always ASCII by construction).
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// API.md: 1–128 characters of `A-Z a-z 0-9 - _ .`; anything else is replaced.
fn is_sane(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn new_request_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let s = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// CSP of every API answer (OWASP REST Security Cheat Sheet): nothing may load, nothing
/// may frame it. A JSON answer opened in a browser runs nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// CSP of the Swagger UI under `/docs`: only its own files, served from the binary (scripts
/// and styles from this origin, the inline SVG icons of its stylesheet as `data:` images,
/// the OpenAPI document and "try it out" calls to this origin). No inline script, no
/// `eval`, no other host. The one inline style its bundle injects is allowed by its hash,
/// not by `'unsafe-inline'`. Checked in a real browser by scripts/test.d/45-docs-csp.sh
/// (a new Swagger UI version with other inline styles fails there).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn csp_for(path: &str) -> HeaderValue {
    let docs = path == "/docs" || path.starts_with("/docs/");
    HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP })
}

/// The route the router matched. The request context runs outside the routing (one
/// stack for every route instead of one per route, see `http::router_with`), so the
/// router's `MatchedPath` reaches it through this slot, filled by [`tag_route`].
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<MatchedPath>>);

/// The one layer inside the router (`tower::util::MapRequestLayer`, no future of its own):
/// hands the matched route to the request context and names the request span after it.
pub fn tag_route(req: Request) -> Request {
    let ext = req.extensions();
    if let (Some(path), Some(slot)) = (ext.get::<MatchedPath>(), ext.get::<RouteSlot>()) {
        let span = tracing::Span::current();
        span.record("route", path.as_str());
        // The exported span is named after the route (bounded), never the raw path.
        crate::telemetry::otel::rename(&span, format!("{} {}", req.method(), path.as_str()));
        let _ = slot.0.set(path.clone());
    }
    req
}

/// The middleware itself (see the module docs).
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| is_sane(v))
        .cloned()
        .unwrap_or_else(new_request_id);
    let slot = RouteSlot::default();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(slot.clone());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let rid = request_id.to_str().unwrap_or_default();
    let (span, trace_id) = request_span(&req, &method, rid);
    let in_flight = crate::metrics::InFlight::start();
    let mut res = next.run(req).instrument(span.clone()).await;
    drop(in_flight);
    let route = slot.0.get().map(MatchedPath::as_str);

    render_error(&mut res, &span, uri.path(), rid);
    security_headers(res.headers_mut(), &request_id, uri.path());
    let elapsed = started.elapsed();
    span.record("http.response.status_code", res.status().as_u16());
    crate::metrics::http_request(&method, route, res.status(), elapsed);
    // Scrapes every few seconds would drown the access log: they are counted, not logged.
    if uri.path() != "/metrics" {
        tracing::info!(
            target: "http",
            parent: None,
            method = %method,
            route = route.unwrap_or("-"),
            status = res.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = rid,
            trace_id = trace_id.as_deref().unwrap_or("-"),
            "request"
        );
    }
    res
}

/// The request's span, a child of the caller's `traceparent` when it sent one, and the
/// trace id that goes into every log line. Unmatched until [`tag_route`] names the route.
fn request_span(
    req: &Request,
    method: &axum::http::Method,
    rid: &str,
) -> (tracing::Span, Option<String>) {
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} unmatched"),
        otel.kind = "server",
        request_id = rid,
        trace_id = tracing::field::Empty,
        method = %method,
        route = "-",
        http.response.status_code = tracing::field::Empty,
    );
    let trace_id = crate::telemetry::otel::adopt(&span, req.headers()).map(|t| t.to_string());
    if let Some(t) = &trace_id {
        span.record("trace_id", t.as_str());
    }
    (span, trace_id)
}

/// An error answer: log its internal cause, and make it a problem document when a handler
/// or a layer answered otherwise.
fn render_error(res: &mut Response, span: &tracing::Span, path: &str, rid: &str) {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    // The provider proxy's answer is the provider's own, error statuses included.
    if res
        .extensions()
        .get::<super::proxy::ForwardedAnswer>()
        .is_some()
    {
        return;
    }
    let err = res.extensions_mut().remove::<Arc<ApiError>>();
    if let Some(cause) = err.as_ref().and_then(|e| e.internal_cause()) {
        tracing::error!(parent: span, request_id = rid, error = cause, "request failed");
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    // A page for a person's browser (the connect page) says what went wrong itself.
    if res.extensions().get::<BrowserPage>().is_some() {
        return;
    }
    if err.is_some() || !is_problem {
        render(res, err.as_deref(), path, rid);
    }
}

/// Marks an HTML answer for a person's browser (crates/server/src/http/connect.rs): an
/// error status keeps its page instead of becoming a problem document, and the page's own
/// `Content-Security-Policy` (with the hash of its one inline script) is kept.
#[derive(Clone, Copy, Debug)]
pub struct BrowserPage;

/// The request id and the security headers every answer carries.
fn security_headers(h: &mut axum::http::HeaderMap, request_id: &HeaderValue, path: &str) {
    h.insert(REQUEST_ID.clone(), request_id.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A browser page (see [`BrowserPage`]) brings its own, stricter-than-docs policy.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| csp_for(path));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Answers carry personal data or tokens unless a route says otherwise: never cache.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_sanity() {
        for ok in ["a", "abc-DEF_1.2", &"x".repeat(128)] {
            assert!(is_sane(&HeaderValue::from_str(ok).expect("header")), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(129), "a\tb"] {
            let v = HeaderValue::from_bytes(bad.as_bytes());
            assert!(v.is_err() || !is_sane(&v.expect("header")), "{bad:?}");
        }
    }
}
