//! Limits on client connections (docs/reliability.md "Slow and oversized clients"): what a
//! client that is slow, idle or sends a huge request head may hold of the service.

use std::time::Duration;

use super::layers::Parser;

/// Client connection limits, enforced by the server loop in `startup`.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A request head must be complete this long after its first byte arrived.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no byte of a new one is closed after this.
    pub keep_alive_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; larger ones get 431.
    pub max_request_head_bytes: usize,
    /// Most client connections open at once; the one above is refused (a 503, then closed).
    pub max_connections: usize,
}

/// Reads the `header_read_timeout_seconds`, `keep_alive_timeout_seconds`,
/// `max_request_head_bytes` and `max_client_connections` settings.
pub(super) fn connection_limits(p: &mut Parser<'_>) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(
            p.number("header_read_timeout_seconds", 1, 3600).into(),
        ),
        keep_alive_timeout: Duration::from_secs(
            p.number("keep_alive_timeout_seconds", 1, 3600).into(),
        ),
        // hyper's read buffer cannot be smaller than 8 KiB.
        max_request_head_bytes: p.number("max_request_head_bytes", 8192, 1 << 20) as usize,
        max_connections: p.number("max_client_connections", 1, 1_000_000) as usize,
    }
}
