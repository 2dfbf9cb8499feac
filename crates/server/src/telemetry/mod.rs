//! Logs and traces. One `tracing` subscriber feeds:
//! * log lines to standard output (JSON in production, readable text in development;
//!   levels from `RUST_LOG`), written by a background thread so a slow stdout never stalls
//!   a request, and optionally the same JSON lines to daily files under `LOG_DIR`;
//! * OpenTelemetry spans ([`otel`]): always given W3C trace ids (so logs and outgoing
//!   `traceparent` headers carry them), exported over OTLP/HTTP when an endpoint is set.
//!
//! Every line logged inside a request carries its `request_id` and `trace_id` ([`json`]
//! finds them on the request span; the text format prints the span's fields).

pub mod json;
pub mod otel;

use std::path::PathBuf;

use anyhow::Context as _;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt, fmt::MakeWriter, layer::Layered, prelude::*,
};

use crate::config::{Config, LogFormat};

/// Default levels when `RUST_LOG` is not set: ours at info, chatty libraries at warn.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tower_http=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn,reqwest=warn";

/// Prefix of the daily log files (`user-service.2026-11-25.log`).
pub const LOG_FILE_PREFIX: &str = "user-service";

/// What the telemetry needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Standard output format.
    pub log_format: LogFormat,
    /// Folder of the daily JSON log files, if any.
    pub log_dir: Option<PathBuf>,
    /// Daily files kept.
    pub log_retention_days: u32,
    /// OTLP base URL (`/v1/traces` is appended), if any.
    pub otlp_endpoint: Option<String>,
}

impl Settings {
    /// The settings of `config`.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            log_format: config.log_format,
            log_dir: config.observability.log_dir.clone(),
            log_retention_days: config.observability.log_retention_days,
            otlp_endpoint: config.otel_endpoint.clone(),
        }
    }
}

/// The installed telemetry. Keep it alive until exit: dropping it flushes the log writers
/// and exports the spans still queued.
pub struct Telemetry {
    _guards: Vec<WorkerGuard>,
    tracing: otel::Tracing,
}

impl Telemetry {
    /// Exports every finished span now (tests; shutdown does it by itself). Blocks.
    pub fn flush(&self) {
        self.tracing.flush();
    }
}

type Base = Layered<EnvFilter, Registry>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the process-wide subscriber, logging to standard output.
///
/// # Errors
/// When a subscriber is installed already, the log folder cannot be created, or the
/// OTLP exporter cannot be built.
pub fn init(settings: &Settings) -> anyhow::Result<Telemetry> {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    install(settings, writer, ansi, vec![guard])
}

/// [`init`] with log lines going to `writer` instead of standard output (tests read them).
///
/// # Errors
/// As [`init`].
pub fn init_with_writer<W>(settings: &Settings, writer: W) -> anyhow::Result<Telemetry>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(settings, writer, false, Vec::new())
}

fn install<W>(
    settings: &Settings,
    writer: W,
    ansi: bool,
    mut guards: Vec<WorkerGuard>,
) -> anyhow::Result<Telemetry>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let tracing = otel::Tracing::new(settings.otlp_endpoint.as_deref())?;
    let mut layers: Vec<BoxedLayer> = vec![json::CorrelationLayer.boxed()];
    if let Some(otel) = tracing.layer::<Base>() {
        layers.push(otel.boxed());
    }
    layers.push(match settings.log_format {
        LogFormat::Json => fmt::layer()
            .event_format(json::JsonLines)
            .fmt_fields(json::NoSpanFields)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    });
    if let Some(dir) = &settings.log_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating LOG_DIR {}", dir.display()))?;
        let appender = tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix(LOG_FILE_PREFIX)
            .filename_suffix("log")
            .max_log_files(settings.log_retention_days as usize)
            .build(dir)
            .with_context(|| format!("opening a log file in LOG_DIR {}", dir.display()))?;
        let (file_writer, guard) = tracing_appender::non_blocking(appender);
        guards.push(guard);
        layers.push(
            fmt::layer()
                .event_format(json::JsonLines)
                .fmt_fields(json::NoSpanFields)
                .with_writer(file_writer)
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init()
        .context("installing the tracing subscriber")?;
    otel::install_propagator();
    Ok(Telemetry {
        _guards: guards,
        tracing,
    })
}
