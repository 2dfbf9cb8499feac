//! The dispatchers that workers run: two on one database send each delivery once, and the
//! loop itself delivers unasked, stops when told and prunes old history.

use super::*;

both_backends!(
    two_dispatchers_send_each_delivery_once,
    the_worker_loop_delivers_prunes_and_stops,
);

async fn two_dispatchers_send_each_delivery_once(backend: Backend) {
    let sub = Subscriber::start().await;
    let app = app_for(backend, &[(&sub, KEY_ONE)], &[]).await;
    for i in 0..20 {
        let ev = user_event("user.created", &format!("user_ev5n{i}"), "Ada", 1);
        deliver(&app, &format!("msg_ev5_{i}"), &ev).await;
    }
    // Two replicas' dispatchers over one database, at the same time.
    let a = app::events::Dispatcher::new(app.state.app().clone());
    let b = app::events::Dispatcher::new(app.state.app().clone());
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(ra.delivered + rb.delivered, 20, "{ra:?} {rb:?}");
    let mut ids: Vec<String> = sub
        .received()
        .iter()
        .map(|(h, _)| header(h, "webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), 20);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "an event was sent twice");
}

/// `Dispatcher::work`, the loop every worker runs: it delivers what is due without being
/// asked, stops when told, and on its first pass prunes delivered history older than the
/// retention (30 days).
async fn the_worker_loop_delivers_prunes_and_stops(backend: Backend) {
    let sub = Subscriber::start().await;
    let app = app_for(backend, &[(&sub, KEY_ONE)], &[]).await;
    let events = app.state.events().clone();
    let run = |events: std::sync::Arc<app::events::Dispatcher>| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        (
            stop,
            tokio::spawn(async move { events.work(stopped).await }),
        )
    };
    let (stop, worker) = run(events.clone());
    deliver(
        &app,
        "msg_loop",
        &user_event("user.created", "user_loop", "Ada", 1),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sub.received().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop delivered nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    tokio::time::timeout(std::time::Duration::from_secs(5), worker)
        .await
        .expect("the loop stops when told")
        .expect("join");
    let admin = app.admin_key_holder().await;
    let delivered = || async {
        app.state
            .app()
            .event_deliveries(&admin, Some("delivered"), None, 10)
            .await
            .expect("deliveries")
            .len()
    };
    assert_eq!(delivered().await, 1);
    // A month and a day later, the next worker's first pass prunes it.
    events
        .clock()
        .set(chrono::Utc::now() + chrono::Duration::days(31));
    let (stop, worker) = run(events.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while delivered().await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "old history was not pruned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    worker.await.expect("join");
    assert_eq!(sub.received().len(), 1, "nothing was sent twice");
}
