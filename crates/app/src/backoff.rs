//! Exponential backoff with jitter, shared by job retries and event deliveries: the wait
//! after failed attempt `attempt` (1-based) is base · 2^(attempt−1), capped, plus a random
//! share of itself so peers that failed together do not retry together.

use std::time::Duration;

/// `base` · 2^(`attempt`−1), at most `cap`, plus a random 0–`jitter` share of that.
#[must_use]
pub(crate) fn exponential(base: Duration, attempt: i32, cap: Duration, jitter: f64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let delay = base.saturating_mul(1 << exp).min(cap);
    delay + delay.mul_f64(jitter * random_fraction())
}

/// A uniform number in [0, 1); 0 when the system has no randomness to give.
fn random_fraction() -> f64 {
    crate::random::bytes::<8>().map_or(0.0, |r| {
        (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64
    })
}
