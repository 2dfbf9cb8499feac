//! Rate limiting per principal (API.md "Rate limiting"): GCRA with a per-minute limit for
//! each kind of caller (user, service, anonymous). In memory by default ([`local`], one
//! keyed `governor` limiter per kind); shared across replicas through Redis when
//! `REDIS_URL` is set ([`shared`], a GCRA Lua script). When Redis fails, requests fall back
//! to the local limiter at once and Redis is retried in the background.
//!
//! The [`middleware`] reads the `Principal` that authentication put in the request's
//! extensions (so it must run after authentication), else keys by client IP.

mod local;
mod middleware;
mod shared;
#[cfg(test)]
mod tests;

use std::{
    net::IpAddr,
    sync::{Arc, Weak},
    time::Duration,
};

pub use middleware::{
    RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, client_ip, rate_limit,
};

use crate::{auth::Principal, config::RateLimitConfig};
use local::LocalLimiter;
use shared::RedisLimiter;

/// How often idle buckets are dropped from the local limiter's maps, bounding memory.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The kind of caller; each kind has its own per-minute limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An end user (Clerk session token).
    User,
    /// A back-end service (service key).
    Service,
    /// No valid credentials: keyed by client IP.
    Anonymous,
}

impl Kind {
    /// The name used in Redis keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
            Self::Anonymous => "anonymous",
        }
    }
}

/// Who a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user, by Clerk user id.
    User(Arc<str>),
    /// A service, by key name.
    Service(Arc<str>),
    /// An anonymous caller, by IP (IPv6 by /64: one client usually holds a whole /64).
    Anonymous(IpAddr),
}

impl Subject {
    /// The subject of an authenticated principal.
    #[must_use]
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::User(u) => Self::User(Arc::from(u.clerk_user_id().as_str())),
            Principal::Service(s) => Self::Service(s.shared_name()),
        }
    }

    /// An anonymous caller at `ip`, normalised: IPv4-mapped IPv6 becomes IPv4, other IPv6
    /// addresses are cut to their /64 so one client cannot multiply its budget.
    #[must_use]
    pub fn anonymous(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 @ IpAddr::V4(_) => v4,
        };
        Self::Anonymous(ip)
    }

    /// The subject's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::User(_) => Kind::User,
            Self::Service(_) => Kind::Service,
            Self::Anonymous(_) => Kind::Anonymous,
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The request may proceed.
    pub allowed: bool,
    /// The per-minute limit of the subject's kind.
    pub limit: u32,
    /// Requests that would still be allowed right now.
    pub remaining: u32,
    /// Time until the bucket is full again.
    pub reset: Duration,
    /// When denied: time until one more request fits. Zero when allowed.
    pub retry_after: Duration,
}

/// Redis as `/ready` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisStatus {
    /// Limits are shared through Redis.
    Ok,
    /// Redis is configured but not answering: local limits are in use.
    Degraded,
    /// No `REDIS_URL`: limits are per process.
    NotConfigured,
}

impl RedisStatus {
    /// `ok`, `degraded` or `not_configured`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::NotConfigured => "not_configured",
        }
    }
}

/// The limiter: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    local: LocalLimiter,
    redis: Option<RedisLimiter>,
    limits: RateLimitConfig,
    trust_forwarded_for: bool,
}

impl RateLimiter {
    /// Builds the limiter. With a Tokio runtime at hand it also starts its background work:
    /// pruning idle local buckets and, when `redis_url` is set, connecting to Redis and
    /// watching its health. Both stop when the last clone of the limiter is dropped.
    #[must_use]
    pub fn new(
        limits: RateLimitConfig,
        trust_forwarded_for: bool,
        redis_url: Option<&str>,
    ) -> Self {
        let redis = redis_url.and_then(|url| match RedisLimiter::new(url, limits.redis_timeout) {
            Ok(r) => Some(r),
            Err(e) => {
                // The configuration validates REDIS_URL, so this is not expected.
                tracing::error!(error = %e, "REDIS_URL is not usable; rate limits stay local");
                None
            }
        });
        let inner = Arc::new(Inner {
            local: LocalLimiter::new(&limits),
            redis,
            limits,
            trust_forwarded_for,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(prune(Arc::downgrade(&inner)));
            if let Some(redis) = &inner.redis {
                redis.spawn_monitor(&rt);
            }
        }
        Self(inner)
    }

    /// Counts one request of `subject` and says whether it may proceed. Uses Redis while it
    /// is healthy (one round trip), else the local limiter; never fails.
    pub async fn check(&self, subject: &Subject) -> Decision {
        let limit = self.limit(subject.kind());
        if let Some(redis) = &self.0.redis
            && let Some(decision) = redis.check(subject, limit).await
        {
            return decision;
        }
        self.0.local.check(subject)
    }

    /// The per-minute limit of `kind`.
    #[must_use]
    pub fn limit(&self, kind: Kind) -> u32 {
        limit_of(&self.0.limits, kind)
    }

    /// Whether `X-Forwarded-For` names the client (behind a trusted proxy only).
    #[must_use]
    pub fn trust_forwarded_for(&self) -> bool {
        self.0.trust_forwarded_for
    }

    /// Redis health, for `/ready`.
    #[must_use]
    pub fn redis_status(&self) -> RedisStatus {
        match &self.0.redis {
            None => RedisStatus::NotConfigured,
            Some(r) if r.is_healthy() => RedisStatus::Ok,
            Some(_) => RedisStatus::Degraded,
        }
    }
}

fn limit_of(limits: &RateLimitConfig, kind: Kind) -> u32 {
    match kind {
        Kind::User => limits.user_per_minute,
        Kind::Service => limits.service_per_minute,
        Kind::Anonymous => limits.anonymous_per_minute,
    }
}

/// The emission interval: one request's worth of time at `limit` per minute.
fn emission_interval(limit: u32) -> Duration {
    Duration::from_secs(60) / limit.max(1)
}

/// Drops buckets that are full again (indistinguishable from new ones) once a minute.
async fn prune(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.local.retain_recent();
    }
}
