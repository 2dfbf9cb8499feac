//! Failed authentications per client IP (docs/security.md "Authentication limits").
//!
//! Rate limiting per principal runs after authentication (it needs the principal), so on
//! its own it would let a client over its limit still make us look up every random
//! well-formed key it sends. This limiter runs first: each failed authentication of an IP
//! takes one cell of a GCRA bucket (`RATE_LIMIT_AUTH_FAILURES_PER_MINUTE`), and once the
//! bucket is empty the IP is *blocked* until the next cell frees. While blocked, a
//! credential that would need a database lookup or a signature check is refused with 429
//! before either happens; a credential answered from the in-memory caches (a key or token
//! verified a moment ago) still works, so one bad client behind a shared address does not
//! lock out the good ones. Successful authentications cost nothing here.
//!
//! Per process (not shared through Redis): the point is to bound the work each process does.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DashMapStateStore,
};

use crate::http::rate_limit::Subject;

/// Counter: failed authentications by `kind` (`malformed`, `service_key`,
/// `session_token`, `no_live_user`), and `throttled`: credentials refused with 429 unchecked.
pub const AUTH_FAILURES: &str = "user_service_auth_failures_total";

/// Why an authentication failed (the metric's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Unreadable or unsupported credentials.
    Malformed,
    /// A well-formed service key that is unknown or revoked.
    ServiceKey,
    /// A session token that does not verify.
    SessionToken,
    /// A valid session whose user is unknown or deleted (not counted against the IP: only
    /// Clerk can mint such a token).
    NoLiveUser,
}

impl FailureKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::ServiceKey => "service_key",
            Self::SessionToken => "session_token",
            Self::NoLiveUser => "no_live_user",
        }
    }
}

type Keyed =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// The limiter; cheap to share behind the application state.
pub struct FailureLimiter {
    buckets: Keyed,
    /// IPs whose bucket is empty, with the instant the next cell frees.
    blocked: moka::sync::Cache<IpAddr, Instant>,
    /// One cell's worth of time.
    cell: Duration,
    clock: DefaultClock,
}

struct UntilExpiry;

impl moka::Expiry<IpAddr, Instant> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &IpAddr,
        until: &Instant,
        created: Instant,
    ) -> Option<Duration> {
        Some(until.saturating_duration_since(created))
    }
}

impl FailureLimiter {
    /// A limiter allowing `per_minute` failures per IP (also the burst).
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            buckets: RateLimiter::dashmap(Quota::per_minute(burst))
                .with_middleware::<StateInformationMiddleware>(),
            blocked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .expire_after(UntilExpiry)
                .build(),
            cell: Duration::from_secs(60) / burst.get(),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(retry_after)` while `ip` is blocked: refuse before checking its credentials.
    ///
    /// # Errors
    /// The time until the IP may fail again.
    pub fn gate(&self, ip: IpAddr) -> Result<(), Duration> {
        match self.blocked.get(&key(ip)) {
            Some(until) if until > Instant::now() => {
                metrics::counter!(AUTH_FAILURES, "kind" => "throttled").increment(1);
                Err(until - Instant::now())
            }
            _ => Ok(()),
        }
    }

    /// Records one failed authentication from `ip`; blocks it once its bucket is empty.
    pub fn failed(&self, ip: IpAddr, kind: FailureKind) {
        metrics::counter!(AUTH_FAILURES, "kind" => kind.as_str()).increment(1);
        if kind == FailureKind::NoLiveUser {
            return;
        }
        let ip = key(ip);
        let until = match self.buckets.check_key(&ip) {
            // The last cell: the next failure fits once one more cell has freed.
            Ok(state) if state.remaining_burst_capacity() == 0 => Instant::now() + self.cell,
            Ok(_) => return,
            Err(not_until) => Instant::now() + not_until.wait_time_from(self.clock.now()),
        };
        self.blocked.insert(ip, until);
    }

    /// A shared limiter whose full buckets are dropped once a minute (bounding memory), for
    /// as long as it is in use.
    #[must_use]
    pub fn shared(per_minute: u32) -> Arc<Self> {
        let limiter = Arc::new(Self::new(per_minute));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&limiter);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { return };
                    l.buckets.retain_recent();
                    l.buckets.shrink_to_fit();
                }
            });
        }
        limiter
    }
}

/// IPv6 by /64, IPv4-mapped as IPv4: the normalisation of the anonymous rate limit.
fn key(ip: IpAddr) -> IpAddr {
    match Subject::anonymous(ip) {
        Subject::Anonymous(ip) => ip,
        _ => ip,
    }
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("blocked", &self.blocked.entry_count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_budget_and_only_that_ip() {
        let l = FailureLimiter::new(3);
        let a: IpAddr = "203.0.113.7".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        for _ in 0..2 {
            l.failed(a, FailureKind::ServiceKey);
            assert!(l.gate(a).is_ok());
        }
        l.failed(a, FailureKind::ServiceKey);
        let wait = l.gate(a).expect_err("blocked after 3 failures");
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(l.gate(b).is_ok(), "another client is not blocked");
        // The same /64 is the same client.
        for _ in 0..3 {
            l.failed(b, FailureKind::Malformed);
        }
        assert!(l.gate("2001:db8::ffff".parse().expect("ip")).is_err());
        // A session without a live user does not count against the address.
        let c: IpAddr = "198.51.100.1".parse().expect("ip");
        for _ in 0..10 {
            l.failed(c, FailureKind::NoLiveUser);
        }
        assert!(l.gate(c).is_ok());
    }
}
