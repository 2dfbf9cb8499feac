//! Startup and shutdown: open the database, migrate, bind, serve, and on SIGTERM/SIGINT
//! turn `/ready` to 503, let in-flight requests finish, then return.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use app::storage::{Database, DbOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{config::Config, http};

/// A bound, ready-to-serve application.
pub struct Application {
    listener: TcpListener,
    /// The separate `/metrics` listener (`METRICS_ADDR`).
    metrics_listener: Option<TcpListener>,
    state: http::AppState,
}

impl Application {
    /// Opens the database (migrating it when configured), builds the state and binds the
    /// listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let vault = crate::keyring::load_vault(&config)?;
        let db = open_database(&config).await?;
        prepare_schema(&db, config.database.run_migrations).await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let metrics_listener = match config.observability.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding METRICS_ADDR {addr}"))?,
            ),
            None => None,
        };
        if config.observability.metrics_enabled
            && config.observability.metrics_addr.is_none()
            && !config.is_development()
        {
            tracing::warn!(
                "metrics are recorded but not served: production serves /metrics only on METRICS_ADDR"
            );
        }
        let auth = crate::auth::Auth::from_config(&config)
            .await
            .context("setting up authentication")?;
        let app = configure(app::App::open(db, vault), &config);
        let state = http::AppState::new(app, Arc::new(config), auth);
        Ok(Self {
            listener,
            metrics_listener,
            state,
        })
    }

    /// The bound address (the real port when the configuration said port 0).
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the separate metrics listener, when `METRICS_ADDR` is set.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The state handlers share (tests use it to reach the database).
    #[must_use]
    pub fn state(&self) -> &http::AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = http::router(self.state.clone());
        // The metrics listener lives as long as the API: stopped when serving ends.
        let metrics = self.metrics_listener.map(|listener| {
            let router = http::metrics_router(self.state.clone());
            tokio::spawn(async move { axum::serve(listener, router).await })
        });
        let result = serve(self.listener, router, self.state, shutdown).await;
        if let Some(task) = metrics {
            task.abort();
        }
        result
    }
}

/// Opens the database and the vault: what the CLI commands work with.
///
/// # Errors
/// When either cannot be opened.
pub async fn open_app(config: &Config) -> anyhow::Result<app::App> {
    let vault = crate::keyring::load_vault(config)?;
    let db = open_database(config).await?;
    Ok(configure(app::App::open(db, vault), config))
}

/// Everything configuration says about the use cases, the same for `serve`, `worker` and
/// the CLI (a `worker` refreshes tokens with the configured providers and sends events to
/// the configured subscribers).
fn configure(app: app::App, config: &Config) -> app::App {
    let app = match (&config.clerk.secret_key, &config.clerk.api_url) {
        (Some(key), Some(url)) => {
            app.with_clerk_api(app::users::signup::ClerkApi::new(url.clone(), key.clone()))
        }
        _ => app,
    };
    app.with_preference_defaults(config.preference_defaults.clone())
        .with_catalog(config.oauth.catalog.clone())
        .with_trace_injector(Arc::new(crate::telemetry::otel::inject_current))
        .with_oauth_settings(app::integrations::OAuthSettings {
            default_redirect: config.oauth.redirect_uri.clone(),
            allowed_redirects: config.oauth.allowed_redirect_uris.clone(),
            public_url: config.http.public_url.clone(),
        })
        .with_event_settings(config.events.clone())
        .with_proxy_settings(config.proxy)
        .with_access_log(config.audit_log)
}

/// Applies pending migrations when `migrate` (a newer release's extra migrations are
/// tolerated with a warning: expand/contract, ADR 0007); else says what `/ready` will find.
///
/// # Errors
/// When a migration fails or the schema has diverged from this release.
async fn prepare_schema(db: &Database, migrate: bool) -> anyhow::Result<()> {
    if migrate {
        return db.migrate().await.context("applying database migrations");
    }
    // --no-migrate: serve anyway; `/ready` stays 503 while migrations are pending.
    match db.migration_state().await {
        Ok(state) => {
            Database::warn_unknown(&state);
            if !state.is_current() {
                tracing::warn!(
                    pending_migrations = %state.pending.join(", "),
                    "migrations pending and --no-migrate given: /ready answers 503 until `user-service migrate` runs"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the migration status"),
    }
    Ok(())
}

/// Opens the database named by the configuration.
///
/// # Errors
/// When the URL is invalid or the database does not answer.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let opts = DbOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
    };
    Database::connect(
        config.database.url.expose_secret(),
        config
            .database
            .read_url
            .as_ref()
            .map(ExposeSecret::expose_secret),
        &opts,
    )
    .await
    .with_context(|| format!("opening database {}", config.database.redacted_url()))
}

/// Serves `router` on `listener` until `shutdown` resolves. Then `/ready` answers 503 for
/// the configured delay (so load balancers stop routing here), the listener closes,
/// in-flight requests finish (up to the configured timeout), and this returns.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    state: http::AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let delay = state.config().http.shutdown_delay;
    let timeout = state.config().http.shutdown_timeout;
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_worker, worker) = start_worker(&state);
    let graceful = {
        let state = state.clone();
        async move {
            shutdown.await;
            // The worker finishes the run in progress while requests drain.
            let _ = stop_worker.send(true);
            state.begin_shutdown();
            tracing::info!(
                delay_s = delay.as_secs(),
                "shutdown requested: /ready now answers 503"
            );
            tokio::time::sleep(delay).await;
            tracing::info!("listener closed; waiting for in-flight requests");
            let _ = drain_tx.send(());
        }
    };
    let limits = state.config().http.connections;
    let server = std::pin::pin!(crate::connections::serve(
        listener, router, limits, graceful
    ));
    let deadline = async move {
        if drain_rx.await.is_ok() {
            tokio::time::sleep(timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        res = server => res.context("HTTP server failed")?,
        () = deadline => tracing::warn!(timeout_s = timeout.as_secs(), "in-flight requests still running at the shutdown timeout; exiting anyway"),
    }
    if let Some(worker) = worker {
        drain_worker(worker, timeout).await;
    }
    state.app().shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Starts the job worker of `serve` when configured; returns its stop switch and task.
fn start_worker(
    state: &http::AppState,
) -> (
    tokio::sync::watch::Sender<bool>,
    Option<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = state
        .config()
        .run_worker
        .then(|| spawn_workers(state.jobs().clone(), state.events().clone(), rx));
    (tx, worker)
}

/// The job runner and the event dispatcher, as one task that ends when both have stopped.
fn spawn_workers(
    jobs: Arc<app::jobs::Runner>,
    events: Arc<app::events::Dispatcher>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let stop_events = stop.clone();
    tokio::spawn(async move {
        tokio::join!(jobs.work(stop), events.work(stop_events));
    })
}

/// Waits for a stopped worker to finish its current run, up to `timeout`. A run cut off
/// here is retried by another worker once its lease lapses (every job is interruptible).
async fn drain_worker(worker: tokio::task::JoinHandle<()>, timeout: std::time::Duration) {
    if tokio::time::timeout(timeout, worker).await.is_err() {
        tracing::warn!(
            timeout_s = timeout.as_secs(),
            "a job was still running at the shutdown timeout; it will be retried"
        );
    }
}

/// `user-service worker`: the scheduler and worker without the HTTP API, until `shutdown`
/// resolves; then the run in progress finishes (up to the shutdown timeout) and it returns.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn run_worker(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = open_app(&config).await?;
    prepare_schema(app.storage(), config.database.run_migrations).await?;
    let runner = Arc::new(app::jobs::Runner::new(
        app.clone(),
        app::jobs::Registry::standard(&config.jobs),
        config.jobs.clone(),
    ));
    let events = Arc::new(app::events::Dispatcher::new(app.clone()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = spawn_workers(runner, events, rx);
    tracing::info!(database = %config.database.redacted_url(), "user-service worker started");
    shutdown.await;
    tracing::info!("shutdown requested: finishing the job in progress");
    let _ = tx.send(true);
    drain_worker(worker, config.http.shutdown_timeout).await;
    app.shutdown().await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
