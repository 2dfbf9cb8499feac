//! Background jobs on both backends, driven by `Runner::run_until_idle` with a clock the
//! test moves (no sleeping): each job's effect on seeded data, and each scheduled tick
//! running exactly once when two workers share one database.

mod common;

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use app::jobs::{Job, JobCx, JobFuture, JobSettings, Registry, Runner};
use chrono::{DateTime, Utc};
use common::{KEY1, KEY2, app, reopen, user_with_integration};
use domain::{UserId, audit::AuditAction};
use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
use store::{
    TransactionTrait,
    entities::{audit_log, integration_tokens, users},
};
use testkit::{Backend, TestDb, both_backends};
use uuid::Uuid;
use vault::{Binding, TokenKind};

both_backends!(
    purge_removes_exactly_users_past_retention_and_their_ciphertexts,
    archive_moves_exactly_the_old_entries,
    usage_analytics_stores_the_previous_days_counts,
    two_workers_run_each_tick_exactly_once
);

// A child module by path: a file directly under tests/ would be a test binary of its own.
#[path = "jobs/flows.rs"]
mod flows;
#[path = "jobs/loops.rs"]
mod loops;
#[path = "jobs/maintenance.rs"]
mod maintenance;

fn settings(dir: &Path) -> JobSettings {
    JobSettings {
        schedules: JobSettings::default_schedules(),
        max_attempts: 3,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(3600),
        lease: Duration::from_secs(600),
        poll_interval: Duration::from_secs(5),
        user_retention_days: 30,
        audit_retention_days: 365,
        audit_archive_dir: dir.join("archive"),
        backup_dir: dir.join("backups"),
        backup_keep: 3,
        backup_max_age: Duration::from_secs(26 * 3600),
        reencrypt_batch: 2,
        reencrypt_max_batches: 100,
        expired_flows_grace: Duration::from_secs(3600),
        expired_flows_batch: 2,
        expired_flows_max_batches: 100,
    }
}

fn runner(app: &app::App, tdb: &TestDb) -> Runner {
    let s = settings(tdb.dir());
    Runner::new(app.clone(), Registry::standard(&s), s)
}

/// Runs `job` now (as `POST /admin/jobs/{name}/run` does) and returns the outcome of that
/// run (scheduled ticks that fell due meanwhile run too and are left out).
async fn run(r: &Runner, job: &str) -> Vec<app::jobs::RunOutcome> {
    let id = r.enqueue_now(job).await.expect("enqueue");
    let done = r.run_until_idle().await.expect("run");
    let mine: Vec<_> = done.iter().filter(|o| o.run_id == id).cloned().collect();
    assert_eq!(mine.len(), 1, "{job} ran once: {done:?}");
    mine
}

async fn seal_token(app: &app::App, user: Uuid, integration: Uuid) {
    let sealed = app.vault().seal(
        b"1//refresh",
        &Binding::new(user, "google", TokenKind::Refresh),
    );
    let v = i32::try_from(app.vault().active_version()).expect("version");
    store::ciphertexts::put_token(
        app.test_db().writer(),
        user,
        integration,
        "refresh",
        v,
        sealed,
    )
    .await
    .expect("put");
}

async fn set_deleted_at(app: &app::App, id: Uuid, at: DateTime<Utc>) {
    let mut u: users::ActiveModel = users::Entity::find_by_id(id)
        .one(app.test_db().writer())
        .await
        .expect("q")
        .expect("user")
        .into();
    u.deleted_at = Set(Some(at));
    users::Entity::update(u)
        .exec(app.test_db().writer())
        .await
        .expect("update");
}

async fn tokens_of(app: &app::App, user: Uuid) -> u64 {
    use sea_orm::{ColumnTrait, QueryFilter};
    integration_tokens::Entity::find()
        .filter(integration_tokens::Column::UserId.eq(user))
        .count(app.test_db().writer())
        .await
        .expect("count")
}

async fn purge_removes_exactly_users_past_retention_and_their_ciphertexts(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let now = Utc::now();
    let mut seeded = Vec::new();
    for (clerk, deleted_days_ago) in [
        ("user_old", Some(31)),
        ("user_recent", Some(29)),
        ("user_live", None),
    ] {
        let (user, integration) = user_with_integration(&app, clerk, "google").await;
        seal_token(&app, user, integration).await;
        // An entry by the user (with their IP) and one about them.
        let txn = app.test_db().writer().begin().await.expect("begin");
        let meta = app::RequestMeta {
            ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("Browser/1.0".to_owned()),
            request_id: Some("req-1".to_owned()),
        };
        let own = common::owner(&app, clerk, meta).await;
        app::audit::record(
            &txn,
            own.ctx(),
            app::audit::AuditRecord::new(AuditAction::UserUpdated, Some(UserId::from_uuid(user)))
                .details(serde_json::json!({"email": format!("{clerk}@example.com")})),
        )
        .await
        .expect("record");
        txn.commit().await.expect("commit");
        if let Some(days) = deleted_days_ago {
            // Soft deletion keeps ciphertexts out already; seal one more so the purge's own
            // deletion is visible, then age the deletion.
            app.delete_user(&own).await.expect("soft delete");
            seal_token(&app, user, integration).await;
            set_deleted_at(&app, user, now - chrono::Duration::days(days)).await;
        }
        seeded.push((clerk, user));
    }
    // The deletions were events; they name the user.
    for (_, user) in &seeded[..2] {
        let events = app
            .events_for_user(UserId::from_uuid(*user))
            .await
            .expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "user.deleted");
    }
    let entries_before = audit_log::Entity::find()
        .count(app.test_db().writer())
        .await
        .expect("count");

    let r = runner(&app, &tdb);
    r.clock().set(now);
    let done = run(&r, "purge_users").await;
    assert_eq!(done[0].outcome, "succeeded", "{done:?}");

    let (old, recent, live) = (seeded[0].1, seeded[1].1, seeded[2].1);
    let w = app.test_db().writer();
    assert!(
        users::Entity::find_by_id(old)
            .one(w)
            .await
            .expect("q")
            .is_none(),
        "purged"
    );
    assert!(
        users::Entity::find_by_id(recent)
            .one(w)
            .await
            .expect("q")
            .is_some(),
        "within retention"
    );
    assert!(
        users::Entity::find_by_id(live)
            .one(w)
            .await
            .expect("q")
            .is_some(),
        "live"
    );
    assert_eq!(
        tokens_of(&app, old).await,
        0,
        "ciphertexts of the purged user are gone"
    );
    assert_eq!(tokens_of(&app, recent).await, 1);
    assert_eq!(tokens_of(&app, live).await, 1);
    // Events about the purged user go with them; the others stay.
    let events_of = |u| {
        let app = app.clone();
        async move {
            app.events_for_user(UserId::from_uuid(u))
                .await
                .expect("events")
                .len()
        }
    };
    assert_eq!(events_of(old).await, 0);
    assert_eq!(events_of(recent).await, 1);
    assert_eq!(done_result(&r).await["events_deleted"], 1);

    // Entries are kept (plus the purge's own and the record of what it pseudonymized),
    // and none names the purged user any more.
    let all = audit_log::Entity::find().all(w).await.expect("entries");
    assert_eq!(all.len() as u64, entries_before + 2);
    assert_eq!(
        all.iter()
            .filter(|e| e.action == "audit.pseudonymized")
            .count(),
        1
    );
    let text = serde_json::to_string(
        &all.iter()
            .map(|e| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?} {}",
                    e.actor_id, e.user_id, e.resource_id, e.ip, e.user_agent, e.details
                )
            })
            .collect::<Vec<_>>(),
    )
    .expect("json");
    assert!(
        !text.contains("user_old"),
        "clerk id left in the audit log: {text}"
    );
    assert!(
        !text.contains(&old.to_string()),
        "user id left in the audit log"
    );
    assert!(text.contains("user_recent") && text.contains(&recent.to_string()));
    let pseudonymized = all.iter().filter(|e| e.pseudonymized_at.is_some()).count();
    assert_eq!(
        pseudonymized, 2,
        "the user.updated and user.deleted entries of user_old"
    );
    app.verify_audit_chain()
        .await
        .expect("db")
        .expect("the chain still verifies after pseudonymization");

    // Idempotent: a second run finds nothing to do.
    let again = run(&r, "purge_users").await;
    assert_eq!(again[0].outcome, "succeeded");
    let runs = r.runs("purge_users", 1).await.expect("runs");
    assert_eq!(runs[0].result.as_ref().expect("result")["users_purged"], 0);
}

/// The result of the newest `purge_users` run.
async fn done_result(r: &app::jobs::Runner) -> serde_json::Value {
    r.runs("purge_users", 1).await.expect("runs")[0]
        .result
        .clone()
        .expect("result")
}

async fn archive_moves_exactly_the_old_entries(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let now = Utc::now();
    let old = now - chrono::Duration::days(366);
    let young = now - chrono::Duration::days(364);
    let ctx = app::Ctx::system("test");
    let entries: Vec<_> = [old, old, old, young, young]
        .iter()
        .map(|at| {
            app::audit::to_entry(
                &ctx,
                app::audit::AuditRecord::new(AuditAction::UserUpdated, Some(UserId::new())),
                *at,
            )
        })
        .collect();
    let txn = app.test_db().writer().begin().await.expect("begin");
    store::audit::append(&txn, entries, app::audit::entry_hash)
        .await
        .expect("append");
    txn.commit().await.expect("commit");

    let r = runner(&app, &tdb);
    r.clock().set(now);
    let done = run(&r, "audit_archive").await;
    assert_eq!(done[0].outcome, "succeeded", "{done:?}");
    let left: Vec<i64> = audit_log::Entity::find()
        .all(app.test_db().writer())
        .await
        .expect("entries")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![4, 5], "exactly the three old entries moved");
    let files: Vec<_> = std::fs::read_dir(tdb.dir().join("archive"))
        .expect("archive folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&files[0]).expect("file")),
        &mut text,
    )
    .expect("gzip");
    assert_eq!(text.lines().count(), 3);
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("verifies");
    assert!(report.anchored_at_archive);
    // Rerun: nothing old is left, nothing moves.
    run(&r, "audit_archive").await;
    assert_eq!(
        audit_log::Entity::find()
            .count(app.test_db().writer())
            .await
            .expect("n"),
        2
    );
}

async fn usage_analytics_stores_the_previous_days_counts(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let now = Utc::now();
    let mut ids = Vec::new();
    for (clerk, provider) in [
        ("user_a", "google"),
        ("user_b", "google"),
        ("user_c", "microsoft"),
    ] {
        ids.push(user_with_integration(&app, clerk, provider).await.0);
    }
    for id in &ids[..2] {
        let mut u: users::ActiveModel = users::Entity::find_by_id(*id)
            .one(app.test_db().writer())
            .await
            .expect("q")
            .expect("user")
            .into();
        u.last_sign_in_at = Set(Some(now));
        users::Entity::update(u)
            .exec(app.test_db().writer())
            .await
            .expect("sign in");
    }
    app.delete_user(&common::owner_by_id(&app, ids[2]).await)
        .await
        .expect("delete");

    let r = runner(&app, &tdb);
    // Tomorrow: the job counts the day before, which is today.
    r.clock().set(now + chrono::Duration::days(1));
    for _ in 0..2 {
        let done = run(&r, "usage_analytics").await;
        assert_eq!(done[0].outcome, "succeeded", "{done:?}");
    }
    let stats = app.usage_stats(now.date_naive()).await.expect("stats");
    let get = |metric: &str, dim: &str| {
        stats
            .iter()
            .find(|s| s.metric == metric && s.dimension == dim)
            .map(|s| s.value)
    };
    assert_eq!(get("users_total", ""), Some(2), "{stats:?}");
    assert_eq!(get("active_users_30d", ""), Some(2));
    assert_eq!(get("sign_ins", ""), Some(2));
    assert_eq!(get("preference_changes", ""), Some(0));
    assert_eq!(get("integrations", "google/active"), Some(2));
    assert_eq!(get("integrations", "microsoft/disconnected"), Some(1));
    assert_eq!(
        stats.len(),
        6,
        "a rerun replaces the day, never adds to it: {stats:?}"
    );
}

/// Counts executions per run and notices any overlap.
#[derive(Default)]
struct Counter {
    runs: Mutex<Vec<i64>>,
    running: AtomicBool,
    overlapped: AtomicBool,
}

struct Tick(Arc<Counter>);

impl Job for Tick {
    fn name(&self) -> &'static str {
        "tick"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            if self.0.running.swap(true, Ordering::SeqCst) {
                self.0.overlapped.store(true, Ordering::SeqCst);
            }
            // Give the other worker every chance to collide.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            self.0.runs.lock().expect("lock").push(cx.run_id);
            self.0.running.store(false, Ordering::SeqCst);
            Ok(serde_json::json!({}))
        })
    }
}

async fn two_workers_run_each_tick_exactly_once(backend: Backend) {
    let (first, tdb) = app(backend, KEY1).await;
    let second = reopen(&tdb, KEY1).await; // its own pool: another replica
    let counter = Arc::new(Counter::default());
    let make = |app: &app::App| {
        let mut reg = Registry::new();
        reg.add(
            Arc::new(Tick(counter.clone())),
            Some(app::jobs::Cron::parse("* * * * *").expect("cron")),
        );
        Runner::new(app.clone(), reg, settings(tdb.dir()))
    };
    let (a, b) = (make(&first), make(&second));
    let t0 = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    a.clock().set(t0);
    b.clock().set(t0);
    a.schedule_due().await.expect("register");
    const TICKS: i64 = 12;
    for m in 1..=TICKS {
        let t = t0 + chrono::Duration::minutes(m) + chrono::Duration::seconds(m % 7);
        a.clock().set(t);
        b.clock().set(t);
        let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
        let n = ra.expect("worker a").len() + rb.expect("worker b").len();
        assert_eq!(n, 1, "minute {m}: the tick ran {n} times");
    }
    let runs = counter.runs.lock().expect("lock").clone();
    assert_eq!(runs.len() as i64, TICKS);
    let mut distinct = runs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), runs.len(), "no run executed twice");
    assert!(
        !counter.overlapped.load(Ordering::SeqCst),
        "never two at once"
    );
    let stored = a.runs("tick", 100).await.expect("runs");
    assert_eq!(stored.len() as i64, TICKS, "one stored run per tick");
    assert!(
        stored
            .iter()
            .all(|r| r.status.as_str() == "succeeded" && r.attempts == 1)
    );
}
