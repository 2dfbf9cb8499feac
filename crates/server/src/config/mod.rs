//! Configuration: built-in defaults (`config/default.toml`, compiled in) → an optional TOML
//! file → environment variables. Validated once at load; errors name the variable. Passed
//! explicitly to whatever needs it: there is no global. Secrets are `SecretString`, so
//! `Debug` never shows them.

mod layers;
mod limits;
mod sections;
#[cfg(test)]
mod tests;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use layers::Layers;
pub use limits::ConnectionLimits;
pub use sections::{
    ClerkConfig, DatabaseConfig, EncryptionConfig, HttpConfig, OAuthConfig, ObservabilityConfig,
    RateLimitConfig,
};

/// Where the service runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The whole configuration, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// `development` or `production`.
    pub environment: Environment,
    /// Address of the HTTP API.
    pub listen_addr: SocketAddr,
    /// The database.
    pub database: DatabaseConfig,
    /// Folder for development files (keys, SQLite database).
    pub data_dir: PathBuf,
    /// Redis for shared limits and locks, when configured.
    pub redis_url: Option<SecretString>,
    /// Clerk session tokens and webhooks.
    pub clerk: ClerkConfig,
    /// Dotted claim path whose value `admin` makes an admin.
    pub admin_role_claim: String,
    /// The token vault's keyring, as configured (parsed by the vault).
    pub encryption: EncryptionConfig,
    /// OAuth callbacks and per-provider settings.
    pub oauth: OAuthConfig,
    /// Outgoing events.
    pub events: app::events::EventSettings,
    /// The provider proxy's limits (docs/proxy.md).
    pub proxy: app::proxy::ProxySettings,
    /// Requests per minute per principal kind.
    pub rate_limits: RateLimitConfig,
    /// Days a soft-deleted user stays restorable.
    pub user_retention_days: u32,
    /// Days an audit entry stays in the database before it is archived.
    pub audit_retention_days: u32,
    /// The group-commit writer of `token.accessed` entries: queue and commit-wait bounds.
    pub audit_log: app::audit::access_log::AccessLogSettings,
    /// OTLP endpoint for traces.
    pub otel_endpoint: Option<String>,
    /// Background jobs: schedules, retries, folders.
    pub jobs: app::jobs::JobSettings,
    /// Run the scheduler and a worker inside `serve` (`--no-worker` turns it off).
    pub run_worker: bool,
    /// HTTP server behaviour.
    pub http: HttpConfig,
    /// Log line format.
    pub log_format: LogFormat,
    /// Metrics, log files and profiling (docs/observability.md).
    pub observability: ObservabilityConfig,
    /// System defaults of user preferences: the built-in ones overlaid with the file's
    /// `[preferences_defaults]` table, validated like a user's update.
    pub preference_defaults: domain::preferences::Preferences,
    /// Settings that took their development default; `serve` warns about each.
    pub development_defaults: Vec<&'static str>,
}

/// The catalog from the built-in one, the operator's file and the provider settings.
fn provider_catalog(
    file: Option<String>,
    settings: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, SecretString>>,
) -> Result<app::integrations::oauth::Catalog, Vec<String>> {
    let extra = match file {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| vec![format!("OAUTH_PROVIDERS_FILE: cannot read {path}: {e}")])?,
        ),
        None => None,
    };
    app::integrations::oauth::Catalog::build(
        app::integrations::oauth::catalog::BUILTIN,
        extra.as_deref(),
        settings,
    )
}

/// Every problem found while loading, one per line, each naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads the configuration from the built-in defaults, an optional TOML file and the
    /// given environment (pass `std::env::vars()`; tests pass their own).
    ///
    /// # Errors
    /// Every invalid or missing setting, each message naming the variable.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::build(file, env)?;
        Self::from_layers(&layers)
    }

    /// Loads from the process environment.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_env(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        Self::load(file, std::env::vars())
    }

    fn from_layers(l: &Layers) -> Result<Self, ConfigError> {
        let mut p = l.parser();
        let environment = match p.string("environment").as_str() {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            other => {
                p.fail(
                    "ENVIRONMENT",
                    format!("must be development or production, not {other:?}"),
                );
                Environment::Development
            }
        };
        let listen_addr = p
            .parse("listen_addr", "a socket address such as 127.0.0.1:8080")
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let database = DatabaseConfig {
            url: SecretString::from(p.string("database_url")),
            read_url: p.optional("database_read_url").map(SecretString::from),
            max_connections: p.number("database_max_connections", 1, 1000),
            acquire_timeout: Duration::from_millis(
                p.number("database_acquire_timeout_ms", 100, 600_000).into(),
            ),
            run_migrations: p.boolean("run_migrations"),
        };
        let db_url = database.url.expose_secret();
        if !(db_url.starts_with("sqlite:")
            || db_url.starts_with("postgres://")
            || db_url.starts_with("postgresql://"))
        {
            p.fail(
                "DATABASE_URL",
                "must start with sqlite:// or postgres://".to_owned(),
            );
        }
        if let Some(read) = &database.read_url {
            let read = read.expose_secret();
            if !db_url.starts_with("postgres") {
                p.fail(
                    "DATABASE_READ_URL",
                    "a read replica needs a Postgres DATABASE_URL (SQLite has no replicas): \
                     unset it or use postgres://"
                        .to_owned(),
                );
            } else if !(read.starts_with("postgres://") || read.starts_with("postgresql://")) {
                p.fail(
                    "DATABASE_READ_URL",
                    "must start with postgres://".to_owned(),
                );
            }
        }
        let redis_url = p.optional("redis_url").map(SecretString::from);
        if let Some(url) = &redis_url {
            // Parsed by the client that will use it; TLS (`rediss://`) is not built in.
            if let Err(e) = redis::Client::open(url.expose_secret()) {
                p.fail(
                    "REDIS_URL",
                    format!("must be a redis:// URL (redis://[:password@]host:port[/db]): {e}"),
                );
            }
        }
        let clerk = ClerkConfig {
            jwks_url: p.optional_url("clerk_jwks_url"),
            issuer: p.optional("clerk_issuer"),
            authorized_parties: p.list("clerk_authorized_parties"),
            webhook_secrets: p
                .list("clerk_webhook_secret")
                .into_iter()
                .map(SecretString::from)
                .collect(),
            secret_key: p.optional("clerk_secret_key").map(SecretString::from),
            api_url: p.optional_url("clerk_api_url"),
        };
        if clerk.jwks_url.is_some() && clerk.issuer.is_none() {
            p.fail(
                "CLERK_ISSUER",
                "must be set when CLERK_JWKS_URL is set".to_owned(),
            );
        }
        let active = p.number("token_encryption_active_version", 0, u32::MAX);
        let encryption = EncryptionConfig {
            keys: p.optional("token_encryption_keys").map(SecretString::from),
            active_version: (active != 0).then_some(active),
        };
        if let Some(keys) = &encryption.keys {
            // Validated here so a bad keyring stops every command at load, naming the variable.
            if let Err(e) = vault::Keyring::parse(keys.expose_secret(), encryption.active_version) {
                p.fail("TOKEN_ENCRYPTION_KEYS", e.to_string());
            }
        }
        let catalog = provider_catalog(p.optional("oauth_providers_file"), &l.oauth_providers())
            .unwrap_or_else(|errors| {
                for e in errors {
                    p.fail("OAUTH", e);
                }
                app::integrations::oauth::Catalog::default()
            });
        let oauth = OAuthConfig {
            redirect_uri: p.optional_url("oauth_redirect_uri"),
            allowed_redirect_uris: p.url_list("oauth_allowed_redirect_uris"),
            catalog,
        };
        let events = app::events::EventSettings {
            subscribers: p.subscribers("webhook_subscribers"),
            retry_base_delay: Duration::from_millis(
                p.number("webhook_retry_base_delay_ms", 1, 86_400_000)
                    .into(),
            ),
            max_attempts: p.number("webhook_max_attempts", 1, 100),
        };
        let proxy = app::proxy::ProxySettings {
            max_body_bytes: p.number("proxy_max_body_bytes", 1024, u32::MAX).into(),
            timeout: Duration::from_secs(p.number("proxy_timeout_seconds", 1, 3600).into()),
        };
        let rate_limits = RateLimitConfig {
            user_per_minute: p.number("rate_limit_user_per_minute", 1, 1_000_000),
            service_per_minute: p.number("rate_limit_service_per_minute", 1, 10_000_000),
            anonymous_per_minute: p.number("rate_limit_anonymous_per_minute", 1, 1_000_000),
            auth_failures_per_minute: p.number("rate_limit_auth_failures_per_minute", 1, 1_000_000),
            redis_timeout: Duration::from_millis(
                p.number("rate_limit_redis_timeout_ms", 1, 10_000).into(),
            ),
        };
        let cors_allowed_origins = p.list("cors_allowed_origins");
        let connect_origin = connect_origin(&mut p, &cors_allowed_origins);
        let http = HttpConfig {
            public_url: p.optional_url("public_url"),
            connect_origin,
            cors_allowed_origins,
            trust_forwarded_for: p.boolean("trust_forwarded_for"),
            max_body_bytes: p.number("max_body_bytes", 1024, 1 << 30) as usize,
            request_timeout: Duration::from_secs(
                p.number("request_timeout_seconds", 1, 3600).into(),
            ),
            shutdown_delay: Duration::from_secs(p.number("shutdown_delay_seconds", 0, 600).into()),
            shutdown_timeout: Duration::from_secs(
                p.number("shutdown_timeout_seconds", 1, 3600).into(),
            ),
            connections: limits::connection_limits(&mut p),
        };
        let log_format = match p.string("log_format").as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            "" if environment == Environment::Production => LogFormat::Json,
            "" => LogFormat::Text,
            other => {
                p.fail("LOG_FORMAT", format!("must be json or text, not {other:?}"));
                LogFormat::Text
            }
        };
        let observability = ObservabilityConfig {
            metrics_enabled: p.boolean("metrics_enabled"),
            metrics_addr: p
                .optional("metrics_addr")
                .is_some()
                .then(|| p.parse("metrics_addr", "a socket address such as 0.0.0.0:9090"))
                .flatten(),
            metrics_sample_interval: Duration::from_secs(
                p.number("metrics_sample_interval_seconds", 1, 86_400)
                    .into(),
            ),
            log_dir: p.optional("log_dir").map(PathBuf::from),
            log_retention_days: p.number("log_retention_days", 1, 3650),
            profiling_enabled: p.boolean("profiling_enabled"),
        };
        let preference_defaults =
            match domain::preferences::defaults_with(&l.preferences_defaults()) {
                Ok(d) => d,
                Err(e) => {
                    for f in e.0 {
                        p.fail(&format!("preferences_defaults.{}", f.field), f.message);
                    }
                    domain::preferences::Preferences::builtin()
                }
            };
        let data_dir = PathBuf::from(p.string("data_dir"));
        let jobs = jobs_settings(&mut p, &data_dir);
        let config = Self {
            jobs,
            run_worker: p.boolean("jobs_worker"),
            preference_defaults,
            environment,
            listen_addr,
            data_dir,
            redis_url,
            admin_role_claim: p.string("admin_role_claim"),
            user_retention_days: p.number("user_retention_days", 1, 36_500),
            audit_retention_days: p.number("audit_retention_days", 1, 36_500),
            audit_log: app::audit::access_log::AccessLogSettings {
                queue: p.number("audit_queue_capacity", 1, 1_000_000) as usize,
                commit_timeout: Duration::from_millis(
                    p.number("audit_commit_timeout_ms", 1, 600_000).into(),
                ),
            },
            otel_endpoint: p.optional("otel_exporter_otlp_endpoint"),
            development_defaults: development_defaults(l, &clerk, &encryption),
            database,
            clerk,
            encryption,
            oauth,
            events,
            proxy,
            rate_limits,
            http,
            log_format,
            observability,
        };
        let mut errors = p.into_errors();
        if config.environment == Environment::Production {
            for name in &config.development_defaults {
                errors.push(format!("{name}: {}", production_refusal(name)));
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// True in development mode.
    #[must_use]
    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

/// `CONNECT_ORIGIN`, or the first CORS origin: an origin exactly (`scheme://host[:port]`),
/// since the browser compares `postMessage`'s target with the opener's origin verbatim.
fn connect_origin(p: &mut layers::Parser<'_>, cors: &[String]) -> Option<String> {
    let (var, raw) = match p.optional("connect_origin") {
        Some(raw) => ("CONNECT_ORIGIN", raw),
        None => ("CORS_ALLOWED_ORIGINS", cors.first()?.clone()),
    };
    let origin = url::Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization());
    if origin.as_deref() == Some(raw.as_str()) {
        Some(raw)
    } else if var == "CORS_ALLOWED_ORIGINS" {
        // Only a default: a CORS list that loaded before must not stop the service now.
        None
    } else {
        p.fail(
            var,
            format!("{raw:?} is not an origin such as https://app.example.com (no path, no trailing slash)"),
        );
        None
    }
}

/// The `job_*`, `backup_*`, archive and expired-flow settings.
fn jobs_settings(p: &mut layers::Parser<'_>, data_dir: &std::path::Path) -> app::jobs::JobSettings {
    let mut schedules = std::collections::BTreeMap::new();
    for (name, _) in app::jobs::DEFAULT_SCHEDULES {
        let key = format!("job_schedule_{name}");
        let Some(text) = p.optional(&key) else {
            continue;
        };
        match app::jobs::Cron::parse(&text) {
            Ok(c) => {
                schedules.insert(name.to_owned(), c);
            }
            Err(e) => p.fail(&key.to_ascii_uppercase(), e),
        }
    }
    let folder = |p: &layers::Parser<'_>, key: &str, default: &str| {
        p.optional(key)
            .map_or_else(|| data_dir.join(default), PathBuf::from)
    };
    app::jobs::JobSettings {
        schedules,
        max_attempts: p.number("job_max_attempts", 1, 100),
        retry_base: Duration::from_secs(p.number("job_retry_base_seconds", 1, 86_400).into()),
        retry_max: Duration::from_secs(p.number("job_retry_max_seconds", 1, 604_800).into()),
        lease: Duration::from_secs(p.number("job_lease_seconds", 10, 86_400).into()),
        poll_interval: Duration::from_secs(p.number("job_poll_interval_seconds", 1, 3600).into()),
        user_retention_days: p.number("user_retention_days", 1, 36_500),
        audit_retention_days: p.number("audit_retention_days", 1, 36_500),
        audit_archive_dir: folder(p, "audit_archive_dir", "audit-archive"),
        backup_dir: folder(p, "backup_dir", "backups"),
        backup_keep: p.number("backup_keep", 1, 1000) as usize,
        backup_max_age: Duration::from_secs(
            u64::from(p.number("backup_max_age_hours", 1, 8760)) * 3600,
        ),
        reencrypt_batch: p.number("key_reencrypt_batch_size", 1, 100_000).into(),
        reencrypt_max_batches: p.number("key_reencrypt_max_batches", 1, 100_000).into(),
        expired_flows_grace: Duration::from_secs(
            u64::from(p.number("expired_flows_grace_minutes", 1, 10_080)) * 60,
        ),
        expired_flows_batch: p.number("expired_flows_batch_size", 1, 100_000).into(),
        expired_flows_max_batches: p.number("expired_flows_max_batches", 1, 100_000).into(),
    }
}

/// The settings left on a development default. Production refuses each of them.
fn development_defaults(
    l: &Layers,
    clerk: &ClerkConfig,
    enc: &EncryptionConfig,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !l.is_set_explicitly("database_url") {
        out.push("DATABASE_URL");
    }
    if enc.keys.is_none() {
        out.push("TOKEN_ENCRYPTION_KEYS");
    }
    if clerk.jwks_url.is_none() {
        out.push("CLERK_JWKS_URL");
    }
    out
}

fn production_refusal(name: &str) -> &'static str {
    match name {
        "DATABASE_URL" => {
            "must be set in production (the SQLite file under ./data is a development default)"
        }
        "TOKEN_ENCRYPTION_KEYS" => {
            "must be set in production (a generated development key would make tokens unreadable on any other machine); format 1:<base64 of 32 random bytes>"
        }
        "CLERK_JWKS_URL" => {
            "must be set in production, with CLERK_ISSUER (local development auth is refused)"
        }
        _ => "must be set in production",
    }
}

/// Replaces the password of a URL with `***`.
#[must_use]
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}
