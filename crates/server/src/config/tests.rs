use std::io::Write;

use secrecy::ExposeSecret;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_load_in_development() {
    let c = Config::load(None, env(&[])).expect("defaults are valid");
    assert_eq!(c.environment, Environment::Development);
    assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(
        c.database.url.expose_secret(),
        "sqlite://data/user-service.db"
    );
    assert_eq!(c.rate_limits.user_per_minute, 600);
    assert_eq!(c.http.max_body_bytes, 1 << 20);
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.development_defaults.contains(&"TOKEN_ENCRYPTION_KEYS"));
}

#[test]
fn file_then_environment_wins() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "listen_addr = \"0.0.0.0:9000\"\nuser_retention_days = 7\ncors_allowed_origins = [\"https://a.example\", \"https://b.example\"]").expect("write");
    let c = Config::load(Some(f.path()), env(&[("USER_RETENTION_DAYS", "9")])).expect("valid");
    assert_eq!(c.listen_addr.to_string(), "0.0.0.0:9000");
    assert_eq!(c.user_retention_days, 9);
    assert_eq!(
        c.http.cors_allowed_origins,
        ["https://a.example", "https://b.example"]
    );
}

#[test]
fn unknown_file_keys_and_bad_values_are_named() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "listen_adr = \"x\"").expect("write");
    let err = Config::load(Some(f.path()), env(&[])).expect_err("unknown key");
    assert!(err.to_string().contains("listen_adr"), "{err}");

    let err = Config::load(
        None,
        env(&[
            ("LISTEN_ADDR", "nope"),
            ("RATE_LIMIT_USER_PER_MINUTE", "-1"),
            ("ENVIRONMENT", "staging"),
        ]),
    )
    .expect_err("invalid");
    let text = err.to_string();
    for var in ["LISTEN_ADDR", "RATE_LIMIT_USER_PER_MINUTE", "ENVIRONMENT"] {
        assert!(text.contains(var), "{var} not named in {text}");
    }
}

#[test]
fn production_refuses_development_defaults_naming_each() {
    let err = Config::load(None, env(&[("ENVIRONMENT", "production")])).expect_err("refused");
    let text = err.to_string();
    for var in ["DATABASE_URL", "TOKEN_ENCRYPTION_KEYS", "CLERK_JWKS_URL"] {
        assert!(text.contains(var), "{var} not named in {text}");
    }
    let ok = Config::load(
        None,
        env(&[
            ("ENVIRONMENT", "production"),
            ("DATABASE_URL", "postgres://u:pw@db/app"),
            (
                "TOKEN_ENCRYPTION_KEYS",
                "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
            (
                "CLERK_JWKS_URL",
                "https://clerk.example/.well-known/jwks.json",
            ),
            ("CLERK_ISSUER", "https://clerk.example"),
        ]),
    )
    .expect("complete production config");
    assert_eq!(ok.log_format, LogFormat::Json);
}

#[test]
fn debug_never_shows_secrets() {
    let c = Config::load(
        None,
        env(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/app"),
            (
                "TOKEN_ENCRYPTION_KEYS",
                "1:c2VjcmV0LWtleS1tYXRlcmlhbC0zMi1ieXRlcy1sb24=",
            ),
            ("CLERK_WEBHOOK_SECRET", "whsec_c2VjcmV0"),
            ("OAUTH_GOOGLE_CLIENT_ID", "gclient"),
            ("OAUTH_GOOGLE_CLIENT_SECRET", "gsecret-value"),
            (
                "WEBHOOK_SUBSCRIBERS",
                r#"[{"url":"https://s.example/hook","secret":"whsec_c3Vic2NyaWJlci1zZWNyZXQtdmFsdWU="}]"#,
            ),
        ]),
    )
    .expect("valid");
    let dbg = format!("{c:?}");
    for secret in [
        "hunter2",
        "c2VjcmV0LWtleS1tYXRlcmlhbA",
        "whsec_c2VjcmV0",
        "gsecret-value",
        "c3Vic2NyaWJlci1z",
    ] {
        assert!(!dbg.contains(secret), "{secret} leaked in Debug");
    }
    assert_eq!(c.database.redacted_url(), "postgres://u:***@db/app");
    let google = c.oauth.catalog.get("google").expect("google");
    let client = google.client.as_ref().expect("configured");
    assert_eq!(client.secret.expose_secret(), "gsecret-value");
}

#[test]
fn subscriber_errors_do_not_echo_secrets() {
    let err = Config::load(
        None,
        env(&[(
            "WEBHOOK_SUBSCRIBERS",
            r#"[{"url":"https://s.example","secret":"whsec_topsecret""#,
        )]),
    )
    .expect_err("malformed");
    assert!(!err.to_string().contains("topsecret"), "{err}");
    // Well-formed JSON with a secret that is not base64: refused at start, not echoed.
    let err = Config::load(
        None,
        env(&[(
            "WEBHOOK_SUBSCRIBERS",
            r#"[{"url":"https://s.example","secret":"whsec_not*base64!"}]"#,
        )]),
    )
    .expect_err("not base64");
    let text = err.to_string();
    assert!(text.contains("WEBHOOK_SUBSCRIBERS[0].secret"), "{text}");
    assert!(!text.contains("not*base64"), "{text}");
}

#[test]
fn production_refuses_short_or_duplicate_keys() {
    let base = [
        ("ENVIRONMENT", "production"),
        ("DATABASE_URL", "postgres://db/app"),
        ("CLERK_JWKS_URL", "https://clerk.example/jwks"),
        ("CLERK_ISSUER", "https://clerk.example"),
    ];
    for bad in [
        "1:c2hvcnQ=",
        "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "nonsense",
    ] {
        let mut e: Vec<(&str, &str)> = base.to_vec();
        e.push(("TOKEN_ENCRYPTION_KEYS", bad));
        let err = Config::load(None, env(&e)).expect_err(bad);
        assert!(err.to_string().contains("TOKEN_ENCRYPTION_KEYS"), "{err}");
        assert!(
            !err.to_string().contains("AAAAAAAA"),
            "key material echoed: {err}"
        );
    }
}

#[test]
fn rate_limit_settings_and_redis_url() {
    let c = Config::load(None, env(&[])).expect("defaults are valid");
    assert!(
        !c.http.trust_forwarded_for,
        "X-Forwarded-For is not trusted by default"
    );
    assert_eq!(c.rate_limits.redis_timeout, Duration::from_millis(100));
    assert!(c.redis_url.is_none());
    let c = Config::load(
        None,
        env(&[
            ("REDIS_URL", "redis://:pw@127.0.0.1:6379/2"),
            ("TRUST_FORWARDED_FOR", "true"),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "50"),
        ]),
    )
    .expect("valid");
    assert!(c.http.trust_forwarded_for);
    assert_eq!(c.rate_limits.redis_timeout, Duration::from_millis(50));
    let err = Config::load(None, env(&[("REDIS_URL", "http://:hunter2@cache:6379")]))
        .expect_err("not a redis URL");
    let text = err.to_string();
    assert!(text.contains("REDIS_URL"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the URL's password is never echoed: {text}"
    );
}

#[test]
fn preference_defaults_come_from_the_file_and_are_validated() {
    let c = Config::load(None, env(&[])).expect("defaults are valid");
    assert_eq!(
        c.preference_defaults,
        domain::preferences::Preferences::builtin()
    );

    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "user_retention_days = 7\n[preferences_defaults.ui]\ntheme = \"dark\"\n[preferences_defaults.privacy]\ndata_retention_days = 90").expect("write");
    let c = Config::load(Some(f.path()), env(&[])).expect("valid");
    assert_eq!(c.preference_defaults.ui.theme.as_str(), "dark");
    assert_eq!(c.preference_defaults.privacy.data_retention_days.get(), 90);
    assert_eq!(c.user_retention_days, 7);

    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "[preferences_defaults.ui]\ntheme = \"neon\"\ncolour = 1").expect("write");
    let err = Config::load(Some(f.path()), env(&[])).expect_err("invalid defaults");
    let text = err.0.join("\n");
    assert!(
        text.contains("preferences_defaults.ui.theme: must be one of light, dark, system"),
        "{text}"
    );
    assert!(
        text.contains("preferences_defaults.ui.colour: is not a known field"),
        "{text}"
    );
}

#[test]
fn provider_settings_are_checked_at_load() {
    let err = Config::load(
        None,
        env(&[
            ("OAUTH_GITHUB_CLIENT_ID", "only-the-id"),
            ("OAUTH_NOSUCH_CLIENT_ID", "x"),
            ("OAUTH_NOSUCH_CLIENT_SECRET", "nosuch-secret"),
        ]),
    )
    .expect_err("refused");
    let all = err.0.join("\n");
    assert!(all.contains("OAUTH_GITHUB_CLIENT_SECRET"), "{all}");
    assert!(all.contains("OAUTH_NOSUCH_*"), "{all}");
    assert!(!all.contains("nosuch-secret"), "{all}");
}

#[test]
fn job_settings_default_and_bad_schedules_are_named() {
    let c = Config::load(None, env(&[("DATA_DIR", "/srv/us")])).expect("defaults are valid");
    assert!(c.run_worker);
    assert_eq!(
        c.jobs.schedules.len(),
        8,
        "every documented job has a default schedule"
    );
    assert_eq!(c.jobs.schedules["purge_users"].as_str(), "30 3 * * *");
    assert_eq!(
        c.jobs.schedules["purge_expired_flows"].as_str(),
        "20 * * * *"
    );
    assert_eq!(
        c.jobs.expired_flows_grace,
        std::time::Duration::from_secs(3600)
    );
    assert_eq!(
        (c.jobs.expired_flows_batch, c.jobs.expired_flows_max_batches),
        (1000, 100)
    );
    assert_eq!(c.jobs.backup_dir, std::path::Path::new("/srv/us/backups"));
    assert_eq!(
        c.jobs.audit_archive_dir,
        std::path::Path::new("/srv/us/audit-archive")
    );
    assert_eq!(c.jobs.max_attempts, 5);

    let c = Config::load(
        None,
        env(&[
            ("JOB_SCHEDULE_AUDIT_ARCHIVE", ""),
            ("JOBS_WORKER", "false"),
            ("BACKUP_DIR", "/b"),
        ]),
    )
    .expect("valid");
    assert!(
        !c.jobs.schedules.contains_key("audit_archive"),
        "empty: on request only"
    );
    assert!(!c.run_worker);
    assert_eq!(c.jobs.backup_dir, std::path::Path::new("/b"));

    let e = Config::load(
        None,
        env(&[
            ("JOB_SCHEDULE_PURGE_USERS", "61 * * * *"),
            ("JOB_MAX_ATTEMPTS", "0"),
            ("EXPIRED_FLOWS_GRACE_MINUTES", "0"),
        ]),
    )
    .expect_err("invalid");
    let text = e.to_string();
    assert!(
        text.contains("JOB_SCHEDULE_PURGE_USERS") && text.contains("minute"),
        "{text}"
    );
    assert!(text.contains("JOB_MAX_ATTEMPTS"), "{text}");
    // No grace: a replica whose clock runs ahead could delete a state another accepts.
    assert!(text.contains("EXPIRED_FLOWS_GRACE_MINUTES"), "{text}");
}

#[test]
fn observability_settings() {
    let c = Config::load(None, env(&[])).expect("defaults are valid");
    assert!(c.observability.metrics_enabled);
    assert_eq!(c.observability.metrics_addr, None);
    assert_eq!(c.observability.log_dir, None);
    assert_eq!(c.observability.log_retention_days, 14);
    assert!(!c.observability.profiling_enabled);
    let c = Config::load(
        None,
        env(&[
            ("METRICS_ADDR", "0.0.0.0:9090"),
            ("LOG_DIR", "/var/log/user-service"),
            ("LOG_RETENTION_DAYS", "3"),
            ("PROFILING_ENABLED", "true"),
            ("METRICS_ENABLED", "false"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        c.observability
            .metrics_addr
            .map(|a| a.to_string())
            .as_deref(),
        Some("0.0.0.0:9090")
    );
    assert_eq!(
        c.observability.log_dir.as_deref(),
        Some(std::path::Path::new("/var/log/user-service"))
    );
    assert_eq!(c.observability.log_retention_days, 3);
    assert!(c.observability.profiling_enabled && !c.observability.metrics_enabled);
    let err = Config::load(
        None,
        env(&[("METRICS_ADDR", "localhost"), ("LOG_RETENTION_DAYS", "0")]),
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.contains("METRICS_ADDR") && text.contains("LOG_RETENTION_DAYS"),
        "{text}"
    );
}

#[test]
fn blank_provider_settings_are_unset() {
    // What deploy/compose.yaml passes for a provider the operator left out.
    let c = Config::load(
        None,
        env(&[
            ("OAUTH_GOOGLE_CLIENT_ID", ""),
            ("OAUTH_GOOGLE_CLIENT_SECRET", " "),
        ]),
    )
    .expect("blank provider settings mean not configured");
    let google = c.oauth.catalog.get("google").expect("google is built in");
    assert!(!google.is_configured());
}

#[test]
fn connect_origin_defaults_to_the_first_cors_origin_and_must_be_an_origin() {
    let c = Config::load(
        None,
        env(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example,https://b.example",
        )]),
    )
    .expect("valid");
    assert_eq!(
        c.http.connect_origin.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(c.http.public_url, None);
    let c = Config::load(
        None,
        env(&[
            ("CORS_ALLOWED_ORIGINS", "https://app.example"),
            ("CONNECT_ORIGIN", "http://127.0.0.1:5173"),
            ("PUBLIC_URL", "https://users.example/api"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        c.http.connect_origin.as_deref(),
        Some("http://127.0.0.1:5173")
    );
    assert_eq!(
        c.http.public_url.map(|u| u.to_string()).as_deref(),
        Some("https://users.example/api")
    );
    assert_eq!(
        Config::load(None, env(&[]))
            .expect("valid")
            .http
            .connect_origin,
        None
    );
    for bad in [
        "*",
        "https://app.example/",
        "https://app.example/path",
        "ftp://x.example",
    ] {
        let err = Config::load(None, env(&[("CONNECT_ORIGIN", bad)])).expect_err(bad);
        assert!(err.to_string().contains("CONNECT_ORIGIN"), "{bad}: {err}");
    }
    // A CORS list that loaded before keeps loading: a non-origin there is just no default.
    let c = Config::load(
        None,
        env(&[("CORS_ALLOWED_ORIGINS", "https://app.example/")]),
    )
    .expect("valid");
    assert_eq!(c.http.connect_origin, None);
}
