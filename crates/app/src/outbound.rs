//! Every outgoing HTTP call — OAuth providers, Clerk's APIs and JWKS, event subscribers —
//! goes through [`Outbound`]: our user agent, a total and a connect timeout, redirects not
//! followed (a token endpoint or subscriber that redirects is misconfigured, and following
//! could leak a code or a body), one `outgoing` span per call (a child of the request or
//! job that makes it) carrying the W3C `traceparent` when the binary set an injector, and
//! metrics by peer.
//!
//! Span attributes and metric labels: the method, the peer's name (fixed words and
//! provider names from configuration), the host, the status code. Never the path or query
//! (they may carry codes or tokens), never headers or bodies.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::Instrument as _;

/// Writes trace context (`traceparent`) into an outgoing request's headers; set by the
/// binary, which owns the tracing setup.
pub type HeaderInjector = Arc<dyn Fn(&mut http::HeaderMap) + Send + Sync>;

/// The one outbound HTTP client; cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    http: reqwest::Client,
    inject: Option<HeaderInjector>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// A client whose calls end after `timeout` in all and `connect_timeout` to connect.
    ///
    /// # Errors
    /// When the TLS backend cannot be set up.
    pub fn new(timeout: Duration, connect_timeout: Duration) -> reqwest::Result<Self> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("user-service/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, inject: None })
    }

    /// Sends trace context with every call (W3C `traceparent`).
    #[must_use]
    pub fn with_injector(mut self, inject: HeaderInjector) -> Self {
        self.inject = Some(inject);
        self
    }

    /// The underlying client, for building requests (send them with [`Outbound::send`]).
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` to `peer` (`clerk_jwks`, `google_token`, `event_delivery`, …).
    ///
    /// # Errors
    /// When no answer arrives; HTTP error statuses are answers.
    pub async fn send(
        &self,
        peer: &str,
        mut request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        let span = tracing::info_span!(
            "outgoing",
            otel.name = %format_args!("{} {peer}", request.method()),
            otel.kind = "client",
            peer,
            http.request.method = %request.method(),
            server.address = %request.url().host_str().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
        );
        if let Some(inject) = &self.inject {
            span.in_scope(|| inject(request.headers_mut()));
        }
        let started = Instant::now();
        let result = self.http.execute(request).instrument(span.clone()).await;
        let status = result.as_ref().ok().map(reqwest::Response::status);
        if let Some(s) = status {
            span.record("http.response.status_code", s.as_u16());
        }
        crate::metrics::outgoing(peer, status.map(|s| s.as_u16()), started);
        result
    }
}

/// Two rustls providers are compiled (ring for sqlx, aws-lc-rs for reqwest): make the
/// process default explicit so no implicit `ClientConfig::builder()` can panic. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a default is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
