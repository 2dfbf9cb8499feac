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
        audit_log, event_deliveries, event_outbox, integration_tokens, integrations, job_runs,
        service_keys, users,
    },
    events, jobs, service_keys as keys,
    token_lookup::{self, UserBy},
    token_refresh,
    users::{self as user_store, Deleted},
};
use testkit::{Backend, TestDb, both_backends};
use uuid::Uuid;

/// Enough rows that a full scan costs the Postgres planner more than an index, and few
/// enough to seed in a few seconds.
const USERS: usize = 2_000;
/// Events (one delivery each): the outbox keeps a few days of them, more than users.
const EVENTS: usize = 10_000;
const AUDIT_PER_USER: usize = 10;
const SERVICE_KEYS: usize = 300;
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
    token_lookup::find(&r, UserBy::Clerk(&clerk), "google", "access")
        .await
        .expect("q");
    c.honest("token hand-out by Clerk id", &r, &[]).await;
    token_lookup::find(&r, UserBy::Id(ids.user), "google", "access")
        .await
        .expect("q");
    c.honest("token hand-out by user id", &r, &[]).await;
    user_store::find_by_clerk_id(&r, &clerk, Deleted::Exclude)
        .await
        .expect("q");
    c.honest("user by Clerk id", &r, &[]).await;
    user_store::find_by_id(&r, ids.user, Deleted::Exclude)
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
        &[
            "idx_integrations_status_expires",
            "idx_integrations_expires_at",
        ],
    )
    .await;
    token_refresh::unchecked_since(&r, now - Duration::minutes(15), 100)
        .await
        .expect("q");
    // Known gap, SQLite only: `last_checked_at IS NULL OR last_checked_at < ?` is no one
    // range, and the unanalyzed planner answers it through `status = ?` of either status
    // index (every connected integration, sorted). It is no `SCAN`, so only the named
    // index is waived there; the statement must change to close it (docs/performance.md).
    let checked: &[&str] = match w.get_database_backend() {
        DbBackend::Postgres => &["idx_integrations_status_checked"],
        _ => &[],
    };
    c.honest("health check work list", &r, checked).await;
    let mut page = AuditFilter {
        user_id: Some(ids.user),
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
        &["idx_audit_log_occurred_at"],
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
    c.failures
}

/// Explains recorded statements and keeps what scans in full.
struct Checks<'a> {
    conn: &'a DatabaseConnection,
    failures: Vec<String>,
}

impl<'a> Checks<'a> {
    fn new(conn: &'a DatabaseConnection) -> Self {
        Self {
            conn,
            failures: Vec::new(),
        }
    }

    /// The planner chooses as it would in production. One of `indexes` must appear in the
    /// plans: for a range or a work list, searching *an* index is not enough (SQLite
    /// happily "searches" `status IN (…)`, which matches nearly every row).
    async fn honest(&mut self, name: &str, r: &Recorder<'_>, indexes: &[&str]) {
        self.check(name, r, false, indexes).await;
    }

    /// For a table that is small by construction: Postgres rightly scans a few rows, so
    /// the plan is asked for with sequential scans priced out; a `Seq Scan` still shown
    /// means no index could serve the statement.
    async fn without_seqscan(&mut self, name: &str, r: &Recorder<'_>) {
        self.check(name, r, true, &[]).await;
    }

    async fn check(&mut self, name: &str, r: &Recorder<'_>, seqscan_off: bool, indexes: &[&str]) {
        let statements = r.take();
        assert!(!statements.is_empty(), "{name}: no statement was run");
        let mut plans = Vec::new();
        for s in statements {
            let txn = self.conn.begin().await.expect("begin");
            if seqscan_off && txn.get_database_backend() == DbBackend::Postgres {
                txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                    .await
                    .expect("set");
            }
            let (scans, plan) = explain(&txn, &s).await;
            txn.rollback().await.expect("rollback");
            if std::env::var_os("PLANS_PRINT").is_some() {
                eprintln!("{name}: {plan}");
            }
            if !scans.is_empty() {
                self.failures.push(format!(
                    "{name}: full scan of {scans:?}\n  statement: {}\n  plan: {plan}",
                    s.sql
                ));
            }
            plans.push(plan);
        }
        let all = plans.join("\n");
        if !indexes.is_empty() && !indexes.iter().any(|i| all.contains(i)) {
            self.failures
                .push(format!("{name}: uses none of {indexes:?}\n  plans: {all}"));
        }
    }
}

/// The tables `s` scans in full, and its plan as text.
async fn explain(conn: &impl ConnectionTrait, s: &Statement) -> (Vec<String>, String) {
    let backend = conn.get_database_backend();
    let prefix = match backend {
        DbBackend::Postgres => "EXPLAIN (FORMAT JSON) ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let stmt = Statement {
        sql: format!("{prefix}{}", s.sql),
        values: s.values.clone(),
        db_backend: backend,
    };
    let rows = conn.query_all_raw(stmt).await.expect("explain");
    if backend == DbBackend::Postgres {
        let plan: serde_json::Value = rows[0].try_get("", "QUERY PLAN").expect("plan");
        let mut scans = Vec::new();
        seq_scans(&plan, &mut scans);
        return (scans, plan.to_string());
    }
    let details: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "detail").expect("detail"))
        .collect();
    let scans = details
        .iter()
        .filter(|d| {
            d.starts_with("SCAN ")
                && !d.contains("USING INDEX")
                && !d.contains("USING COVERING INDEX")
        })
        .cloned()
        .collect();
    (scans, details.join("; "))
}

/// The relations of every `Seq Scan` node in a Postgres JSON plan.
fn seq_scans(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Array(items) => items.iter().for_each(|n| seq_scans(n, out)),
        serde_json::Value::Object(map) => {
            if map.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
                let rel = map.get("Relation Name").and_then(|r| r.as_str());
                out.push(rel.unwrap_or("?").to_owned());
            }
            map.values().for_each(|v| seq_scans(v, out));
        }
        _ => {}
    }
}

/// Postgres: fresh statistics, as autovacuum keeps them. SQLite: nothing (see above).
async fn analyze(conn: &DatabaseConnection) {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_unprepared("ANALYZE").await.expect("analyze");
    }
}

/// A connection that keeps every statement it runs.
struct Recorder<'a> {
    conn: &'a DatabaseConnection,
    seen: Mutex<Vec<Statement>>,
}

impl<'a> Recorder<'a> {
    fn new(conn: &'a DatabaseConnection) -> Self {
        Self {
            conn,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn keep(&self, s: &Statement) {
        self.seen.lock().expect("lock").push(s.clone());
    }

    /// The statements run since the last call.
    fn take(&self) -> Vec<Statement> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl ConnectionTrait for Recorder<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.keep(&stmt);
        self.conn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.keep(&Statement::from_string(self.get_database_backend(), sql));
        self.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.keep(&stmt);
        self.conn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.keep(&stmt);
        self.conn.query_all_raw(stmt).await
    }
}

/// What the checks look up in the seed.
struct Seeded {
    user: Uuid,
    /// An audit id in the middle of that user's entries (a second page).
    audit_cursor: i64,
}

fn key_hash(i: usize) -> String {
    format!("{i:064x}")
}

/// Users with a Google integration (access and refresh token) each, their audit entries,
/// service keys, events with deliveries and job runs, in one transaction.
async fn seed(w: &DatabaseConnection, now: DateTime<Utc>) -> Seeded {
    let txn = w.begin().await.expect("begin");
    let mut user_rows = Vec::new();
    let mut integration_rows = Vec::new();
    let mut token_rows = Vec::new();
    for i in 0..USERS {
        let (user, integration) = (Uuid::now_v7(), Uuid::now_v7());
        user_rows.push(user_row(user, i, now));
        integration_rows.push(integration_row(integration, user, i, now));
        for kind in ["access", "refresh"] {
            token_rows.push(integration_tokens::Model {
                integration_id: integration,
                kind: kind.to_owned(),
                user_id: user,
                key_version: 1,
                ciphertext: vec![1; 64],
                updated_at: now,
            });
        }
    }
    let user = user_rows[USERS / 2].id;
    let audit_rows = audit_rows(&user_rows, now);
    let audit_cursor = audit_rows
        .iter()
        .filter(|e| e.user_id == Some(user))
        .nth(AUDIT_PER_USER / 2)
        .expect("entries of the user")
        .id;
    insert_all::<users::Entity, _>(&txn, user_rows).await;
    insert_all::<integrations::Entity, _>(&txn, integration_rows).await;
    insert_all::<integration_tokens::Entity, _>(&txn, token_rows).await;
    insert_all::<audit_log::Entity, _>(&txn, audit_rows).await;
    insert_all::<service_keys::Entity, _>(
        &txn,
        (0..SERVICE_KEYS).map(|i| key_row(i, now)).collect(),
    )
    .await;
    seed_events(&txn, now).await;
    seed_job_runs(&txn, now).await;
    txn.commit().await.expect("commit");
    Seeded { user, audit_cursor }
}

/// Inserts models in batches small enough for either engine's bound-parameter limit.
async fn insert_all<E, M>(conn: &impl ConnectionTrait, mut rows: Vec<M>)
where
    E: EntityTrait<Model = M>,
    M: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(500));
        let batch = rows.into_iter().map(|m| m.into_active_model().reset_all());
        E::insert_many(batch)
            .exec_without_returning(conn)
            .await
            .expect("seed");
        rows = rest;
    }
}

fn user_row(id: Uuid, i: usize, now: DateTime<Utc>) -> users::Model {
    users::Model {
        id,
        clerk_user_id: format!("user_{i}"),
        email: Some(format!("user{i}@example.com")),
        first_name: Some("Ada".to_owned()),
        last_name: None,
        profile_image_url: None,
        onboarding_completed: true,
        onboarding_step: None,
        onboarding_completed_at: None,
        last_sign_in_at: Some(now),
        clerk_updated_at: None,
        created_at: now - Duration::minutes(i as i64),
        updated_at: now,
        // One in fifty deleted: live filters must not turn into scans.
        deleted_at: (i % 50 == 49).then_some(now),
    }
}

/// Tokens expire over the next day (a sweep ten minutes ahead finds a few); checks
/// happened within the last 15 minutes, one in a hundred never.
fn integration_row(id: Uuid, user_id: Uuid, i: usize, now: DateTime<Utc>) -> integrations::Model {
    let minutes = |m: usize| Duration::minutes(m as i64);
    integrations::Model {
        id,
        user_id,
        provider: "google".to_owned(),
        status: if i.is_multiple_of(20) {
            "refresh_failed"
        } else {
            "active"
        }
        .to_owned(),
        account_id: Some(format!("acct_{i}")),
        account_email: None,
        scopes: json!(["openid", "email"]),
        connected_at: Some(now - minutes(i)),
        expires_at: Some(now + minutes(i % 1440)),
        last_refreshed_at: None,
        last_refresh_attempt_at: None,
        last_checked_at: (!i.is_multiple_of(100)).then(|| now - minutes(i % 14)),
        last_used_at: None,
        last_error: None,
        refresh_failures: 0,
        refresh_lease_until: None,
        refresh_not_before: None,
        created_at: now - minutes(i),
        updated_at: now,
    }
}

/// Entries spread evenly over the past year, oldest first (ids follow time, as appends do),
/// each user's interleaved with everyone else's.
fn audit_rows(users: &[users::Model], now: DateTime<Utc>) -> Vec<audit_log::Model> {
    let total = users.len() * AUDIT_PER_USER;
    let step = Duration::days(365) / i32::try_from(total).expect("fits");
    let actions = [
        "token.accessed",
        "user.updated",
        "preferences.updated",
        "token.refreshed",
    ];
    (0..total)
        .map(|n| {
            let u = &users[n % users.len()];
            audit_log::Model {
                id: n as i64 + 1,
                occurred_at: now - step * i32::try_from(total - n).expect("fits"),
                actor_type: "user".to_owned(),
                actor_id: Some(u.clerk_user_id.clone()),
                action: actions[n % actions.len()].to_owned(),
                user_id: Some(u.id),
                resource_type: Some("user".to_owned()),
                resource_id: Some(u.id.to_string()),
                outcome: "success".to_owned(),
                ip: None,
                user_agent: None,
                request_id: None,
                details: json!({}),
                prev_hash: "0".repeat(64),
                hash: "0".repeat(64),
                pii_digest: None,
                pseudonymized_at: None,
            }
        })
        .collect()
}

fn key_row(i: usize, now: DateTime<Utc>) -> service_keys::Model {
    service_keys::Model {
        id: Uuid::now_v7(),
        name: format!("service-{i}"),
        key_hash: key_hash(i),
        key_prefix: "usk_test".to_owned(),
        permissions: json!(["tokens:read"]),
        created_at: now,
        last_used_at: None,
        // Revoked keys stay in the table.
        revoked_at: i.is_multiple_of(3).then_some(now),
        providers: None,
        scope_ceiling: None,
        expires_at: None,
        // Some keys were rotated: their previous hash is indexed too.
        previous_key_hash: i.is_multiple_of(5).then(|| key_hash(i + SERVICE_KEYS)),
        previous_valid_until: i.is_multiple_of(5).then_some(now),
    }
}

/// One event per user with one delivery each: all delivered but a few pending, due now.
async fn seed_events(conn: &impl ConnectionTrait, now: DateTime<Utc>) {
    let events: Vec<_> = (0..EVENTS)
        .map(|_| event_outbox::Model {
            id: Uuid::now_v7(),
            event_type: "user.updated".to_owned(),
            user_id: None,
            payload: json!({}),
            created_at: now,
        })
        .collect();
    let deliveries = events
        .iter()
        .enumerate()
        .map(|(i, e)| event_deliveries::Model {
            id: i as i64 + 1,
            event_id: e.id,
            subscriber_url: "https://subscriber.test/hook".to_owned(),
            status: if i % 100 == 0 {
                events::status::PENDING
            } else {
                events::status::DELIVERED
            }
            .to_owned(),
            attempts: 1,
            next_attempt_at: now - Duration::seconds(i as i64),
            last_status_code: Some(200),
            last_error: None,
            delivered_at: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    insert_all::<event_outbox::Entity, _>(conn, events).await;
    insert_all::<event_deliveries::Entity, _>(conn, deliveries).await;
}

/// The job's row, and a quarter-hourly job's runs of the past weeks: all succeeded but the
/// newest, pending and due.
async fn seed_job_runs(conn: &impl ConnectionTrait, now: DateTime<Utc>) {
    jobs::ensure(conn, JOB, now).await.expect("job");
    let runs = (0..USERS)
        .map(|i| {
            let at = now - Duration::minutes(15 * i as i64);
            let done = i > 0;
            job_runs::Model {
                id: i as i64 + 1,
                job: JOB.to_owned(),
                run_key: at.to_rfc3339(),
                trigger: "schedule".to_owned(),
                status: if done {
                    jobs::status::SUCCEEDED
                } else {
                    jobs::status::PENDING
                }
                .to_owned(),
                attempts: i32::from(done),
                max_attempts: 3,
                run_after: at,
                locked_until: None,
                last_error: None,
                result: None,
                created_at: at,
                started_at: done.then_some(at),
                finished_at: done.then_some(at),
            }
        })
        .collect();
    insert_all::<job_runs::Entity, _>(conn, runs).await;
}
