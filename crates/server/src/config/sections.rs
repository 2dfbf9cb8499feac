//! The sections of [`Config`](super::Config): database, Clerk, encryption, OAuth, rate
//! limits, HTTP and observability settings, as loaded and validated by `Config::load`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use super::{ConnectionLimits, redact_url};

/// Database connection settings.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// Primary URL (may hold a password: secret).
    pub url: SecretString,
    /// Optional read replica.
    pub read_url: Option<SecretString>,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection (and, on SQLite, for a lock): past it a
    /// request answers 503.
    pub acquire_timeout: Duration,
    /// Apply migrations when `serve` starts.
    pub run_migrations: bool,
}

impl DatabaseConfig {
    /// The URL with any password replaced, safe for logs.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

/// Clerk settings.
#[derive(Clone, Debug, Default)]
pub struct ClerkConfig {
    /// JWKS endpoint; `None` means local development auth.
    pub jwks_url: Option<url::Url>,
    /// Expected `iss`.
    pub issuer: Option<String>,
    /// Accepted `azp` values; empty: `azp` not checked.
    pub authorized_parties: Vec<String>,
    /// Svix webhook secrets (`whsec_…`), several during rotation.
    pub webhook_secrets: Vec<SecretString>,
    /// Backend API secret key (`sk_…`): unknown session users are fetched from Clerk (the
    /// sign-up race). `None`: an unknown user is 404 until the webhook arrives.
    pub secret_key: Option<SecretString>,
    /// Base URL of Clerk's Backend API.
    pub api_url: Option<url::Url>,
}

/// Encryption keyring settings.
#[derive(Clone, Debug, Default)]
pub struct EncryptionConfig {
    /// `1:<base64>,2:<base64>`; `None`: a development key under `data_dir`.
    pub keys: Option<SecretString>,
    /// The version that encrypts; `None`: the highest.
    pub active_version: Option<u32>,
}

/// OAuth settings.
#[derive(Clone, Debug, Default)]
pub struct OAuthConfig {
    /// Default callback.
    pub redirect_uri: Option<url::Url>,
    /// Callbacks a client may ask for.
    pub allowed_redirect_uris: Vec<url::Url>,
    /// The provider catalog: built in, extended by `OAUTH_PROVIDERS_FILE`, completed by
    /// every `OAUTH_<PROVIDER>_<SETTING>` variable (credentials, endpoints, tenant).
    pub catalog: app::integrations::oauth::Catalog,
}

/// Rate limits, per minute.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitConfig {
    pub user_per_minute: u32,
    pub service_per_minute: u32,
    pub anonymous_per_minute: u32,
    /// Failed authentications per client IP and minute before its credentials are refused
    /// unchecked (429).
    pub auth_failures_per_minute: u32,
    /// Longest wait for Redis on one check before the local limiter decides.
    pub redis_timeout: Duration,
}

/// HTTP server settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Origins allowed by CORS; empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// `PUBLIC_URL`: where browsers reach this service (the connect page's base).
    pub public_url: Option<url::Url>,
    /// `CONNECT_ORIGIN` (default: the first CORS origin): the only target of the connect
    /// page's `postMessage`.
    pub connect_origin: Option<String>,
    /// Client IP from the last `X-Forwarded-For` entry (behind a trusted proxy only).
    pub trust_forwarded_for: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Time `/ready` answers 503 before the listener closes.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests at shutdown.
    pub shutdown_timeout: Duration,
    /// Limits on client connections: request heads, idle and slow sockets, their number.
    pub connections: ConnectionLimits,
}

/// Metrics, log files and profiling.
#[derive(Clone, Debug)]
pub struct ObservabilityConfig {
    /// Record metrics and serve them; off: no recorder, `/metrics` answers 404.
    pub metrics_enabled: bool,
    /// Serve `/metrics` on this address instead of the API port (in production: the only
    /// place metrics are served).
    pub metrics_addr: Option<SocketAddr>,
    /// Least time between two samples of the gauges that need a query (integrations).
    pub metrics_sample_interval: Duration,
    /// Also write JSON log lines to daily files in this folder.
    pub log_dir: Option<PathBuf>,
    /// Daily log files kept in `log_dir`.
    pub log_retention_days: u32,
    /// Serve `GET /admin/debug/profile` to admins.
    pub profiling_enabled: bool,
}
