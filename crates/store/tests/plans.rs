//! Every hot query answers from an index, on both engines: a lost index fails here rather
//! than in production (issue 17, item 4).
//!
//! The statements are the store's own: each repository function runs against a
//! [`Recorder`], a connection that keeps every statement it is handed (SQL and bound values)
//! and passes it on to the real database. Each kept statement is then explained there:
//! `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (FORMAT JSON)` on Postgres. A full scan fails:
//! on SQLite a `SCAN <table>` without `USING INDEX` / `USING COVERING INDEX`, on Postgres a
//! `Seq Scan` node.
//!
//! The planner is left to choose honestly: the large tables get a few thousand rows with
//! production-like spreads (tokens expiring over a day, checks within the last 15 minutes,
//! audit entries over a year, deliveries mostly done, runs mostly finished), and Postgres
//! gets `ANALYZE`, as autovacuum would. SQLite is not analyzed: the service never runs
//! `ANALYZE` there. The one exception is `jobs`, one row per job the code registers: a
//! sequential scan of a handful of rows is the right plan, so that statement is explained
//! with `enable_seqscan = off`, which still shows a `Seq Scan` when no index could serve it.
//!
//! A plan that searches *some* index is not always enough: SQLite "searches" a work list
//! through `status IN (…)`, which matches nearly every row. So the range queries also name
//! the indexes that may answer them, and one must appear in the plan.
//!
//! At the end two indexes are dropped and the same checks must then fail: the test proves
//! it can see a lost index.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    ExecResult, IntoActiveModel, QueryResult, Statement, TransactionTrait,
};
use serde_json::json;
use store::{
    Db, DbOptions,
    audit::{self, AuditFilter},
    entities::{
        audit_log, connect_sessions, event_deliveries, event_outbox, integration_tokens,
        integrations, job_runs, oauth_states, service_keys, users,
    },
    events, expired, jobs, service_keys as keys,
    token_lookup::{self, UserBy},
    token_refresh,
    users::{self as user_store, Deleted},
};
use testkit::{Backend, TestDb, both_backends};
use uuid::Uuid;

// Child modules by path: a file directly under tests/ would be a test binary of its own.
#[path = "plans/explain.rs"]
mod explain;
#[path = "plans/seed.rs"]
mod seed;

use explain::{Checks, Recorder, analyze};
use seed::{Seeded, key_hash, seed};

/// Enough rows that a full scan costs the Postgres planner more than an index, and few
/// enough to seed in a few seconds.
const USERS: usize = 2_000;
/// Events (one delivery each): the outbox keeps a few days of them, more than users.
const EVENTS: usize = 10_000;
const AUDIT_PER_USER: usize = 10;
const SERVICE_KEYS: usize = 300;
/// OAuth states (a connect session for every other one).
const FLOWS: usize = 5_000;
const JOB: &str = "integration_health";

both_backends!(hot_queries_use_an_index);

async fn hot_queries_use_an_index(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let now = Utc::now();
    let ids = seed(db.writer(), now).await;
    analyze(db.writer()).await;

    let failures = check_hot_queries(db.writer(), &ids, now).await;
    assert!(
        failures.is_empty(),
        "hot queries without an index:\n{}",
        failures.join("\n")
    );

    // The check sees a lost index: without these two, a user's audit page and the due
    // deliveries read far more than they answer, and must be reported.
    for index in ["idx_audit_log_user", "idx_event_deliveries_due"] {
        db.writer()
            .execute_unprepared(&format!("DROP INDEX {index}"))
            .await
            .expect("drop index");
    }
    analyze(db.writer()).await;
    let failures = check_hot_queries(db.writer(), &ids, now).await;
    let named = |q: &str| failures.iter().any(|f| f.starts_with(q));
    assert!(
        named("audit page of a user") && named("event deliveries due"),
        "dropped indexes went unnoticed: {failures:#?}"
    );
    db.close().await;
}

/// Runs each hot query through a [`Recorder`] and explains what it ran: one line per
/// statement that scans a table in full, prefixed with the query's name.
async fn check_hot_queries(
    w: &DatabaseConnection,
    ids: &Seeded,
    now: DateTime<Utc>,
) -> Vec<String> {
    let r = Recorder::new(w);
    let mut c = Checks::new(w);
    let clerk = format!("user_{}", USERS / 2);
    token_lookup::find(&r, UserBy::Clerk(&clerk), "google", None, "access")
        .await
        .expect("q");
    c.honest("token hand-out by Clerk id", &r, &[]).await;
    token_lookup::find(&r, UserBy::Id(ids.user), "google", None, "access")
        .await
        .expect("q");
    c.honest("token hand-out by user id", &r, &[]).await;
    token_lookup::find(&r, UserBy::Id(ids.user), "google", Some("acct"), "access")
        .await
        .expect("q");
    c.honest("token hand-out of a named account", &r, &[]).await;
    user_store::find_by_clerk_id(&r, &clerk, Deleted::Exclude)
        .await
        .expect("q");
    c.honest("user by Clerk id", &r, &[]).await;
    user_store::find_by_id(&r, domain::UserId::from_uuid(ids.user), Deleted::Exclude)
        .await
        .expect("q");
    c.honest("user by id", &r, &[]).await;
    keys::find_active_by_hash(&r, &key_hash(SERVICE_KEYS / 2))
        .await
        .expect("q");
    c.honest("service key by hash", &r, &[]).await;
    token_refresh::expiring_before(&r, now + Duration::minutes(10), 100)
        .await
        .expect("q");
    c.honest(
        "refresh sweep work list",
        &r,
        &["idx_integrations_status_expires_id"],
    )
    .await;
    token_refresh::unchecked_since(&r, now - Duration::minutes(15), 100)
        .await
        .expect("q");
    c.honest(
        "health check work list",
        &r,
        &["idx_integrations_status_checked_id"],
    )
    .await;
    let mut page = AuditFilter {
        user_id: Some(domain::UserId::from_uuid(ids.user)),
        ..AuditFilter::default()
    };
    audit::list(&r, &page, 51).await.expect("q");
    page.before_id = Some(ids.audit_cursor);
    audit::list(&r, &page, 51).await.expect("q");
    c.honest("audit page of a user", &r, &["idx_audit_log_user"])
        .await;
    audit::count_by_action(&r, now - Duration::days(30), now)
        .await
        .expect("q");
    audit::count_by_day(&r, now - Duration::days(30), now)
        .await
        .expect("q");
    c.honest(
        "audit stats over 30 days",
        &r,
        &["idx_audit_log_occurred_action"],
    )
    .await;
    let due = events::due(&r, now, 50).await.expect("q");
    assert!(!due.is_empty(), "the seed has due deliveries");
    events::claim(&r, due[0].id, now, now + Duration::seconds(30))
        .await
        .expect("q");
    c.honest(
        "event deliveries due, and a claim",
        &r,
        &["idx_event_deliveries_due"],
    )
    .await;
    let run = jobs::next_due(&r, JOB, now).await.expect("q");
    assert!(run.is_some(), "the seed has a due run");
    c.honest("next due job run", &r, &[]).await;
    jobs::try_lock(&r, JOB, "plans", now, now + Duration::seconds(30))
        .await
        .expect("q");
    c.without_seqscan("job lock (jobs: one row per registered job)", &r)
        .await;
    check_flow_purge(&r, &mut c, now).await;
    c.failures
}

/// The purge of expired flows: each batch is found by expiry (the job's defaults: an
/// hour's grace, 1000 rows a statement).
async fn check_flow_purge(r: &Recorder<'_>, c: &mut Checks<'_>, now: DateTime<Utc>) {
    let before = now - Duration::hours(1);
    expired::oauth_states(r, before, 1000).await.expect("q");
    c.honest(
        "expired OAuth states purge",
        r,
        &["idx_oauth_states_expires_at"],
    )
    .await;
    expired::connect_sessions(r, before, 1000).await.expect("q");
    c.honest(
        "expired connect sessions purge",
        r,
        &["idx_connect_sessions_expires_at"],
    )
    .await;
}
