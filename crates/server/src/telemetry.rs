//! Logging: JSON lines in production, readable lines in development, levels from
//! `RUST_LOG`. Lines are written by a background thread so a slow stdout never stalls a
//! request.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Default levels when `RUST_LOG` is not set: ours at info, chatty libraries at warn.
const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tower_http=warn";

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .init(),
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            registry
                .with(fmt::layer().compact().with_ansi(ansi).with_writer(writer))
                .init();
        }
    }
    guard
}
