//! `Runner::work`, the loop every worker runs, doing its housekeeping without being asked:
//! its first pass prunes finished runs past their retention (90 days), and the audit
//! archive job its schedule enqueues moves audit entries past theirs out of the database.

use super::*;

both_backends!(
    the_worker_loop_prunes_runs_past_retention,
    the_worker_loop_archives_audit_past_retention,
);

/// Starts `r.work` on its own task; the sender stops it.
fn work(
    r: &Arc<Runner>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let r = r.clone();
    (stop, tokio::spawn(async move { r.work(stopped).await }))
}

/// Waits (15 s at most) until `done` holds, then stops the worker and waits for it.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
    (stop, worker): (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the loop stops when told")
        .expect("join");
}

async fn the_worker_loop_prunes_runs_past_retention(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let r = Arc::new(runner(&app, &tdb));
    let now = Utc::now();
    // One run that finished 91 days ago, one 89 days ago.
    r.clock().set(now - chrono::Duration::days(91));
    let old = run(&r, "integration_health").await[0].run_id;
    r.clock().set(now - chrono::Duration::days(89));
    let young = run(&r, "integration_health").await[0].run_id;
    r.clock().set(now);
    let ids = || async {
        r.runs("integration_health", 100)
            .await
            .expect("runs")
            .iter()
            .map(|run| run.id)
            .collect::<Vec<_>>()
    };
    assert!(ids().await.contains(&old));
    let worker = work(&r);
    until(
        "pruned the old run",
        || async {
            let ids = ids().await;
            !ids.contains(&old) && ids.contains(&young)
        },
        worker,
    )
    .await;
    assert!(
        ids().await.contains(&young),
        "a run within retention is kept"
    );
}

async fn the_worker_loop_archives_audit_past_retention(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    let now = Utc::now();
    let ctx = app::Ctx::system("test");
    let entries: Vec<_> = [now - chrono::Duration::days(400), now]
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
    let r = Arc::new(runner(&app, &tdb));
    // Today the schedules start; a week and a day later the weekly archive tick is due.
    r.clock().set(now);
    r.schedule_due().await.expect("schedules start");
    r.clock().set(now + chrono::Duration::days(8));
    let left = || async {
        audit_log::Entity::find()
            .all(app.test_db().writer())
            .await
            .expect("entries")
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    let worker = work(&r);
    until(
        "archived the old entry",
        || async { left().await == vec![2] },
        worker,
    )
    .await;
    let files = std::fs::read_dir(tdb.dir().join("archive"))
        .expect("archive folder")
        .count();
    assert_eq!(files, 1, "the old entry went to one archive file");
}
