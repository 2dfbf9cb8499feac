//! The limiter shared across replicas: a GCRA Lua script in Redis (`gcra.lua`), one round
//! trip per check, against Redis's clock.
//!
//! Health is one atomic flag. While it is down, checks do not touch Redis at all (the
//! caller uses the local limiter); a background monitor pings Redis every
//! [`RETRY_BACKOFF`] until it answers, and every [`HEALTH_EVERY`] while it is up, so `/ready`
//! tells the truth even without traffic. Exactly one WARN is logged per outage (by whoever
//! flips the flag) and one INFO when Redis is back.

use std::{
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;

use super::{Decision, Subject, emission_interval};

/// Longest wait for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest wait for a health ping (connecting included), on top of the command timeout.
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between attempts while Redis is down.
const RETRY_BACKOFF: Duration = Duration::from_secs(2);
/// Pause between health pings while Redis is up.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// The GCRA script; `redis::Script` keeps its SHA1, so a check is one `EVALSHA`.
const GCRA_LUA: &str = include_str!("gcra.lua");

/// Handle to the shared limiter; the monitor task holds only a weak reference.
pub(super) struct RedisLimiter(Arc<Shared>);

struct Shared {
    client: redis::Client,
    /// Longest wait for one check (`rate_limit_redis_timeout_ms`): a hung Redis must not
    /// hang requests.
    timeout: Duration,
    /// Created by the monitor (connecting lazily); reconnects by itself after errors.
    conn: OnceLock<ConnectionManager>,
    healthy: AtomicBool,
    /// Wakes the monitor when a request saw Redis fail.
    wake: Arc<Notify>,
    script: redis::Script,
}

impl RedisLimiter {
    /// Parses the URL; connects later, in the monitor.
    pub(super) fn new(url: &str, timeout: Duration) -> redis::RedisResult<Self> {
        Ok(Self(Arc::new(Shared {
            client: redis::Client::open(url)?,
            timeout,
            conn: OnceLock::new(),
            healthy: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
            script: redis::Script::new(GCRA_LUA),
        })))
    }

    /// True while checks go to Redis.
    pub(super) fn is_healthy(&self) -> bool {
        self.0.healthy.load(Ordering::Acquire)
    }

    /// Starts the task that connects, watches health and recovers.
    pub(super) fn spawn_monitor(&self, rt: &tokio::runtime::Handle) {
        rt.spawn(monitor(Arc::downgrade(&self.0), self.0.wake.clone()));
    }

    /// Counts one request in Redis. `None` when Redis is down or fails now: the caller
    /// falls back to the local limiter.
    pub(super) async fn check(&self, subject: &Subject, limit: u32) -> Option<Decision> {
        if !self.is_healthy() {
            return None;
        }
        let mut conn = self.0.conn.get()?.clone();
        let key = match subject {
            Subject::User(k) => format!("rl:user:{k}"),
            Subject::Service(k) => format!("rl:service:{k}"),
            Subject::Anonymous(ip) => format!("rl:anonymous:{ip}"),
        };
        let t_us = u64::try_from(emission_interval(limit).as_micros()).unwrap_or(u64::MAX);
        let mut invocation = self.0.script.prepare_invoke();
        invocation.key(key).arg(t_us.max(1)).arg(limit);
        let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut conn);
        match tokio::time::timeout(self.0.timeout, call).await {
            Ok(Ok((allowed, remaining, reset_us, retry_us))) => Some(Decision {
                allowed: allowed == 1,
                limit,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(limit).min(limit),
                reset: micros(reset_us),
                retry_after: micros(retry_us),
            }),
            Ok(Err(e)) => {
                self.mark_down(&e);
                None
            }
            Err(_) => {
                self.mark_down(&"no answer within the command timeout");
                None
            }
        }
    }

    fn mark_down(&self, cause: &dyn std::fmt::Display) {
        if self.0.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %cause, "Redis is failing: rate limits fall back to this process until it answers again");
            self.0.wake.notify_one();
        }
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

impl Shared {
    /// One PING (connecting first if needed), bounded by [`PING_TIMEOUT`].
    async fn ping(&self) -> Result<(), String> {
        let conn = match self.conn.get() {
            Some(c) => c.clone(),
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(self.timeout))
                    // The monitor does the retrying, on its own schedule.
                    .set_number_of_retries(0);
                let created = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                    .map_err(|e| e.to_string())?;
                self.conn.get_or_init(|| created).clone()
            }
        };
        let mut conn = conn;
        let ping = redis::cmd("PING");
        let pong = ping.query_async::<String>(&mut conn);
        match tokio::time::timeout(PING_TIMEOUT + self.timeout, pong).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer to PING in time".to_owned()),
        }
    }
}

/// Connects, then keeps `healthy` true exactly while Redis answers. Ends when the limiter
/// is dropped.
async fn monitor(shared: Weak<Shared>, wake: Arc<Notify>) {
    let mut first = true;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let up = match s.ping().await {
            Ok(()) => {
                if !s.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!("Redis answers: rate limits are shared across replicas");
                }
                true
            }
            Err(e) => {
                if s.healthy.swap(false, Ordering::AcqRel) || first {
                    tracing::warn!(error = %e, "Redis is not answering: rate limits fall back to this process until it does");
                }
                false
            }
        };
        first = false;
        drop(s);
        let pause = if up { HEALTH_EVERY } else { RETRY_BACKOFF };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            // A request saw a failure: wait the back-off from now, not from the last ping.
            () = wake.notified(), if up => tokio::time::sleep(RETRY_BACKOFF).await,
        }
    }
}
