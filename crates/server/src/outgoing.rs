//! Every outgoing HTTP call goes through [`OutgoingClient`]: one span per call (a child of
//! the request or job that makes it), the W3C `traceparent` of that span on the request so
//! the receiver joins the trace, and metrics by peer. Today the Clerk JWKS fetch uses it;
//! provider calls (OAuth exchanges, refreshes) and event deliveries are to use it as well.
//!
//! Span attributes: the method, the peer's fixed name, the host, the status code. Never the
//! path or query (they may carry codes or tokens), never headers or bodies.

use std::time::Instant;

use tracing::Instrument as _;

/// A `reqwest::Client` that traces and counts each call.
#[derive(Clone, Debug)]
pub struct OutgoingClient {
    client: reqwest::Client,
}

impl OutgoingClient {
    /// Wraps `client` (its timeouts and user agent apply).
    #[must_use]
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// The wrapped client, for building requests.
    #[must_use]
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` to `peer` (a fixed name: `clerk_jwks`, `google_token`, …).
    ///
    /// # Errors
    /// When the request cannot be built or no answer arrives; HTTP error statuses are
    /// answers (check them with `error_for_status`).
    pub async fn send(
        &self,
        peer: &'static str,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = request.build()?;
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let span = tracing::info_span!(
            "outgoing",
            otel.name = %format_args!("{} {peer}", request.method()),
            otel.kind = "client",
            peer,
            http.request.method = %request.method(),
            server.address = %host,
            http.response.status_code = tracing::field::Empty,
        );
        span.in_scope(|| crate::telemetry::otel::inject_current(request.headers_mut()));
        let started = Instant::now();
        let result = self.client.execute(request).instrument(span.clone()).await;
        let status = result.as_ref().ok().map(reqwest::Response::status);
        if let Some(s) = status {
            span.record("http.response.status_code", s.as_u16());
        }
        crate::metrics::outgoing(peer, status, started);
        result
    }
}
