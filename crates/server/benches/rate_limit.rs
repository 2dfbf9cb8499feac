//! Cost of one rate-limit check: local (governor, in process) and shared (one Redis round
//! trip running the GCRA script). The Redis part runs when `TEST_REDIS_URL` (or
//! `REDIS_URL`) names a reachable Redis:
//! `TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p server --bench rate_limit`.
#![allow(clippy::unwrap_used)]

use std::{hint::black_box, net::IpAddr, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use server::{
    config::RateLimitConfig,
    http::rate_limit::{RateLimiter, RedisStatus, Subject},
};

// Limits too high to deny: the cost of an allowed check is what every request pays.
const LIMITS: RateLimitConfig = RateLimitConfig {
    user_per_minute: 1_000_000,
    service_per_minute: 10_000_000,
    anonymous_per_minute: 1_000_000,
    auth_failures_per_minute: 30,
    redis_timeout: Duration::from_millis(100),
};

fn local(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limiter = rt.block_on(async { RateLimiter::new(LIMITS, false, None) });
    let mut g = c.benchmark_group("local");
    // What `block_on` alone costs, to subtract from the checks below.
    g.bench_function("baseline: block_on of a ready future", |b| {
        b.iter(|| rt.block_on(async { black_box(1) }));
    });
    let service = Subject::Service(Arc::from("billing"));
    g.bench_function("service, one key", |b| {
        b.iter(|| rt.block_on(limiter.check(black_box(&service))));
    });
    g.bench_function("user, subject built per request", |b| {
        b.iter(|| {
            let s = Subject::User(Arc::from(black_box("user_2abcDEF9")));
            rt.block_on(limiter.check(&s))
        });
    });
    let ips: Vec<Subject> = (0..10_000u32)
        .map(|i| Subject::anonymous(IpAddr::from((0x0a00_0000 + i).to_be_bytes())))
        .collect();
    let mut i = 0;
    g.bench_function("anonymous, 10k distinct IPs", |b| {
        b.iter(|| {
            i = (i + 1) % ips.len();
            rt.block_on(limiter.check(&ips[i]))
        });
    });
    g.finish();
}

fn shared(c: &mut Criterion) {
    let Some(url) = std::env::var("TEST_REDIS_URL")
        .or_else(|_| std::env::var("REDIS_URL"))
        .ok()
    else {
        eprintln!("shared: skipped (set TEST_REDIS_URL to a running Redis)");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limiter = rt.block_on(async {
        let l = RateLimiter::new(LIMITS, false, Some(&url));
        for _ in 0..100 {
            if l.redis_status() == RedisStatus::Ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        l
    });
    assert_eq!(
        limiter.redis_status(),
        RedisStatus::Ok,
        "Redis at {url} answers"
    );
    let service = Subject::Service(Arc::from("bench-billing"));
    c.bench_function("redis/service, one round trip", |b| {
        b.iter(|| rt.block_on(limiter.check(black_box(&service))));
    });
    assert_eq!(
        limiter.redis_status(),
        RedisStatus::Ok,
        "no fallback during the run"
    );
}

criterion_group!(benches, local, shared);
criterion_main!(benches);
