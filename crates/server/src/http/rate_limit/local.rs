//! The in-process limiter: one keyed `governor` GCRA limiter per kind of caller. The
//! state is a sharded `DashMap`, so concurrent checks of different keys rarely contend;
//! a check is a hash, a shard read lock and one compare-and-swap.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DashMapStateStore,
};

use super::{Decision, Subject, emission_interval, limit_of};
use crate::config::RateLimitConfig;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, StateInformationMiddleware>;

/// Keyed limiters for users, services and anonymous callers.
pub(super) struct LocalLimiter<C: Clock = DefaultClock> {
    clock: C,
    limits: RateLimitConfig,
    users: Keyed<Arc<str>, C>,
    services: Keyed<Arc<str>, C>,
    anonymous: Keyed<IpAddr, C>,
}

impl LocalLimiter {
    /// Limiters on the monotonic clock.
    pub(super) fn new(limits: &RateLimitConfig) -> Self {
        Self::with_clock(limits, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimiter<C> {
    /// Limiters on `clock` (tests pass a `FakeRelativeClock`).
    pub(super) fn with_clock(limits: &RateLimitConfig, clock: &C) -> Self {
        Self {
            clock: clock.clone(),
            limits: *limits,
            users: keyed(limits.user_per_minute, clock),
            services: keyed(limits.service_per_minute, clock),
            anonymous: keyed(limits.anonymous_per_minute, clock),
        }
    }

    /// Counts one request of `subject`.
    pub(super) fn check(&self, subject: &Subject) -> Decision {
        let limit = limit_of(&self.limits, subject.kind());
        let outcome = match subject {
            Subject::User(k) => self.users.check_key(k),
            Subject::Service(k) => self.services.check_key(k),
            Subject::Anonymous(ip) => self.anonymous.check_key(ip),
        };
        let t = emission_interval(limit);
        match outcome {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(limit);
                // governor keeps the exact arrival time private; (limit - remaining) cells
                // of time is the same or at most one cell more (conservative).
                Decision {
                    allowed: true,
                    limit,
                    remaining,
                    reset: t * (limit - remaining),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Decision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    // Full again one burst (limit - 1 cells) after the next cell fits.
                    reset: wait + t * (limit - 1),
                    retry_after: wait,
                }
            }
        }
    }

    /// Drops the buckets that are full again.
    pub(super) fn retain_recent(&self) {
        self.users.retain_recent();
        self.services.retain_recent();
        self.anonymous.retain_recent();
        self.users.shrink_to_fit();
        self.services.shrink_to_fit();
        self.anonymous.shrink_to_fit();
    }

    /// Buckets held for `kind` (tests check that pruning bounds memory).
    #[cfg(test)]
    pub(super) fn len(&self, kind: super::Kind) -> usize {
        use super::Kind;
        match kind {
            Kind::User => self.users.len(),
            Kind::Service => self.services.len(),
            Kind::Anonymous => self.anonymous.len(),
        }
    }
}

fn keyed<K, C>(per_minute: u32, clock: &C) -> Keyed<K, C>
where
    K: std::hash::Hash + Eq + Clone,
    C: Clock + Clone,
{
    let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    RateLimiter::dashmap_with_clock(Quota::per_minute(burst), clock.clone())
        .with_middleware::<StateInformationMiddleware>()
}
