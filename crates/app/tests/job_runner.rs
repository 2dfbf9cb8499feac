//! The runner's guarantees on both backends, without sleeping: a run whose worker died is
//! taken over once its lease lapses (and the stale worker's late result is ignored); a
//! panicking job is a failed attempt; a permanent error fails at once; a stopped worker
//! finishes the run in progress and starts nothing new.

mod common;

use std::{sync::Arc, time::Duration};

use app::jobs::{Job, JobCx, JobError, JobFuture, JobSettings, Registry, Runner};
use chrono::Utc;
use common::{KEY1, app, reopen};
use testkit::{Backend, both_backends};
use tokio::sync::Notify;

both_backends!(
    a_dead_workers_run_is_taken_over_after_its_lease,
    panics_and_permanent_errors_are_failed_attempts,
    a_stopped_worker_drains_and_starts_nothing_new
);

fn settings() -> JobSettings {
    JobSettings {
        schedules: Default::default(),
        max_attempts: 3,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(3600),
        lease: Duration::from_secs(600),
        poll_interval: Duration::from_secs(3600),
        user_retention_days: 30,
        audit_retention_days: 365,
        audit_archive_dir: std::env::temp_dir(),
        backup_dir: std::env::temp_dir(),
        backup_keep: 1,
        backup_max_age: Duration::from_secs(3600),
        reencrypt_batch: 1,
        reencrypt_max_batches: 1,
        expired_flows_grace: Duration::from_secs(3600),
        expired_flows_batch: 1,
        expired_flows_max_batches: 1,
    }
}

/// Blocks its first attempt until released; later attempts return at once.
struct Blocker {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Job for Blocker {
    fn name(&self) -> &'static str {
        "blocker"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            if cx.attempt == 1 {
                self.started.notify_one();
                self.release.notified().await;
            }
            Ok(serde_json::json!({"attempt": cx.attempt}))
        })
    }
}

struct Failing(&'static str);

impl Job for Failing {
    fn name(&self) -> &'static str {
        self.0
    }

    fn run<'a>(&'a self, _cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            if self.0 == "panics" {
                panic!("job bug");
            }
            Err(JobError::permanent("misconfigured: retrying cannot help"))
        })
    }
}

fn blocker() -> (Arc<Blocker>, Arc<Notify>, Arc<Notify>) {
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    (
        Arc::new(Blocker {
            started: started.clone(),
            release: release.clone(),
        }),
        started,
        release,
    )
}

async fn a_dead_workers_run_is_taken_over_after_its_lease(backend: Backend) {
    let (first, tdb) = app(backend, KEY1).await;
    let second = reopen(&tdb, KEY1).await;
    let (job, started, release) = blocker();
    let runner = |app: &app::App| {
        let mut reg = Registry::new();
        reg.add(job.clone(), None);
        Arc::new(Runner::new(app.clone(), reg, settings()))
    };
    let (a, b) = (runner(&first), runner(&second));
    let t0 = Utc::now();
    a.clock().set(t0);
    b.clock().set(t0);
    let id = a.enqueue_now("blocker").await.expect("enqueue");
    let stuck = {
        let a = a.clone();
        tokio::spawn(async move { a.run_until_idle().await })
    };
    started.notified().await;
    // While A holds the lease, B does nothing.
    assert!(b.run_until_idle().await.expect("b").is_empty());
    // A stops renewing (as if its process died); once the lease lapses, B takes over.
    b.clock().set(t0 + chrono::Duration::seconds(601));
    let done = b.run_until_idle().await.expect("b");
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(
        (done[0].run_id, done[0].attempt, done[0].outcome),
        (id, 2, "succeeded")
    );
    // A's late result is not recorded over B's.
    release.notify_one();
    let late = stuck.await.expect("join").expect("a");
    assert_eq!(late[0].outcome, "abandoned", "{late:?}");
    let run = a.runs("blocker", 1).await.expect("runs").remove(0);
    assert_eq!((run.status.as_str(), run.attempts), ("succeeded", 2));
    assert_eq!(run.result.expect("result")["attempt"], 2);
}

async fn panics_and_permanent_errors_are_failed_attempts(backend: Backend) {
    let (app, _tdb) = app(backend, KEY1).await;
    let mut reg = Registry::new();
    reg.add(Arc::new(Failing("panics")), None);
    reg.add(Arc::new(Failing("permanent")), None);
    let r = Runner::new(app, reg, settings());
    r.clock().set(Utc::now());
    r.enqueue_now("panics").await.expect("enqueue");
    r.enqueue_now("permanent").await.expect("enqueue");
    let done = r.run_until_idle().await.expect("run");
    assert_eq!(done.len(), 2, "{done:?}");
    let panicked = done.iter().find(|o| o.job == "panics").expect("ran");
    assert_eq!(panicked.outcome, "retry", "a panic is a transient failure");
    assert!(
        panicked
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("panic"),
        "{panicked:?}"
    );
    let permanent = done.iter().find(|o| o.job == "permanent").expect("ran");
    assert_eq!((permanent.outcome, permanent.attempt), ("failed", 1));
    let status = r.status().await.expect("status");
    let p = status
        .iter()
        .find(|s| s.name == "permanent")
        .expect("listed");
    assert_eq!(p.last_outcome.as_deref(), Some("failed"));
    assert_eq!(
        p.last_error.as_deref(),
        Some("misconfigured: retrying cannot help")
    );
    assert_eq!(p.schedule, None);
    assert_eq!(p.next_run_at, None);
}

async fn a_stopped_worker_drains_and_starts_nothing_new(backend: Backend) {
    let (app, _tdb) = app(backend, KEY1).await;
    let (job, started, release) = blocker();
    let mut reg = Registry::new();
    reg.add(job, None);
    reg.add(Arc::new(Failing("permanent")), None);
    let r = Arc::new(Runner::new(app, reg, settings()));
    r.clock().set(Utc::now());
    r.enqueue_now("blocker").await.expect("enqueue");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = {
        let r = r.clone();
        tokio::spawn(async move { r.work(rx).await })
    };
    started.notified().await;
    // SIGTERM arrives while the job runs; then more work is enqueued.
    stop.send(true).expect("stop");
    r.enqueue_now("permanent").await.expect("enqueue");
    assert!(
        !worker.is_finished(),
        "the worker waits for the run in progress"
    );
    release.notify_one();
    tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the worker stops once the run is done")
        .expect("join");
    let blocker_run = r.runs("blocker", 1).await.expect("runs").remove(0);
    assert_eq!(
        blocker_run.status.as_str(),
        "succeeded",
        "the run in progress finished"
    );
    let later = r.runs("permanent", 1).await.expect("runs").remove(0);
    assert_eq!(
        (later.status.as_str(), later.attempts),
        ("pending", 0),
        "nothing new started"
    );
}
