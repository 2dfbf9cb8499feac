//! Vault timings, through the `metrics` facade (a no-op until the server installs a
//! recorder). Labels: the operation and whether it succeeded; never anything about the
//! key, the user or the token.

use std::time::Instant;

/// Histogram: seconds per seal / open, by `operation` and `outcome` (`ok` / `error`).
pub const VAULT_OPERATION_DURATION: &str = "user_service_vault_operation_duration_seconds";

pub(crate) fn observe(operation: &'static str, ok: bool, started: Instant) {
    metrics::histogram!(
        VAULT_OPERATION_DURATION,
        "operation" => operation,
        "outcome" => if ok { "ok" } else { "error" },
    )
    .record(started.elapsed().as_secs_f64());
}
