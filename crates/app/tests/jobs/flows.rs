//! The purge of expired flows: OAuth states past their expiry plus the grace go, connect
//! sessions ten minutes (a state's lifetime) later, in batches of the configured size;
//! live rows and rows within the grace stay.

use std::collections::BTreeSet;

use app::jobs::PurgeExpiredFlows;
use sea_orm::ActiveModelTrait;
use store::entities::{connect_sessions, oauth_states};

use super::*;

both_backends!(
    expired_flows_past_their_grace_are_deleted_and_nothing_else,
    a_purge_larger_than_its_batches_finishes_on_the_next_run,
);

/// Minutes from now. The grace of `settings` is an hour: states expired longer ago go,
/// sessions ten minutes after that (the flow they started may live ten minutes longer).
const PAST: i64 = -61;
const SESSION_PAST: i64 = -71;
const WITHIN: i64 = -59;
const LIVE: i64 = 5;

async fn state(app: &app::App, user: Uuid, hash: &str, expires: DateTime<Utc>, used: bool) {
    oauth_states::ActiveModel {
        state_hash: Set(hash.to_owned()),
        user_id: Set(user),
        provider: Set("google".to_owned()),
        redirect_uri: Set("https://app.example.com/cb".to_owned()),
        scopes: Set(serde_json::json!([])),
        key_version: Set(1),
        pkce_verifier: Set(vec![1, 2, 3]),
        created_at: Set(expires - chrono::Duration::minutes(10)),
        expires_at: Set(expires),
        used_at: Set(used.then_some(expires - chrono::Duration::minutes(5))),
    }
    .insert(app.test_db().writer())
    .await
    .expect("state");
}

async fn session(
    app: &app::App,
    user: Uuid,
    hash: &str,
    expires: DateTime<Utc>,
    flow: Option<&str>,
) {
    connect_sessions::ActiveModel {
        session_hash: Set(hash.to_owned()),
        user_id: Set(user),
        provider: Set("google".to_owned()),
        scopes: Set(None),
        created_at: Set(expires - chrono::Duration::minutes(10)),
        expires_at: Set(expires),
        used_at: Set(flow.map(|_| expires - chrono::Duration::minutes(1))),
        flow_state_hash: Set(flow.map(str::to_owned)),
    }
    .insert(app.test_db().writer())
    .await
    .expect("session");
}

async fn left(app: &app::App) -> (BTreeSet<String>, BTreeSet<String>) {
    let w = app.test_db().writer();
    let states = oauth_states::Entity::find().all(w).await.expect("states");
    let sessions = connect_sessions::Entity::find()
        .all(w)
        .await
        .expect("sessions");
    (
        states.into_iter().map(|s| s.state_hash).collect(),
        sessions.into_iter().map(|s| s.session_hash).collect(),
    )
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn result_of(r: &Runner, job: &str) -> serde_json::Value {
    r.runs(job, 1).await.expect("runs")[0]
        .result
        .clone()
        .expect("result")
}

async fn app_with_user(backend: Backend) -> (app::App, TestDb, Uuid) {
    let (app, tdb) = app(backend, KEY1).await;
    let user = testkit::fixtures::user("user_flows")
        .insert(app.test_db().writer())
        .await;
    (app, tdb, user)
}

async fn expired_flows_past_their_grace_are_deleted_and_nothing_else(backend: Backend) {
    let (app, tdb, user) = app_with_user(backend).await;
    let now = Utc::now();
    let at = |minutes: i64| now + chrono::Duration::minutes(minutes);
    // Five expired states past the grace (more than two batches of two), one of them used.
    for i in 0..5 {
        state(&app, user, &format!("past-{i}"), at(PAST - i), i == 0).await;
    }
    state(&app, user, "within", at(WITHIN), false).await;
    state(&app, user, "live", at(LIVE), false).await;
    state(&app, user, "live-used", at(LIVE), true).await;
    for i in 0..3 {
        session(
            &app,
            user,
            &format!("s-past-{i}"),
            at(SESSION_PAST - i),
            None,
        )
        .await;
    }
    session(&app, user, "s-flow-gone", at(SESSION_PAST), Some("past-1")).await;
    // Past the grace, but the state of the flow it started may still be within it.
    session(&app, user, "s-flow-young", at(PAST - 4), Some("within")).await;
    session(&app, user, "s-within", at(WITHIN), None).await;
    session(&app, user, "s-live", at(LIVE), None).await;

    let r = runner(&app, &tdb);
    r.clock().set(now);
    run(&r, "purge_expired_flows").await;
    let (states, sessions) = left(&app).await;
    assert_eq!(states, names(&["within", "live", "live-used"]));
    assert_eq!(sessions, names(&["s-flow-young", "s-within", "s-live"]));
    let result = result_of(&r, "purge_expired_flows").await;
    assert_eq!(result["states_deleted"], 5, "{result}");
    assert_eq!(result["sessions_deleted"], 4, "{result}");
    assert_eq!(result["complete"], true, "{result}");
    // Batches of two: 2+2+1 states, 2+2+0 sessions.
    assert_eq!(result["batches"], 6, "{result}");

    // Later the grace of the rest is over too.
    r.clock().set(at(LIVE - SESSION_PAST));
    run(&r, "purge_expired_flows").await;
    let (states, sessions) = left(&app).await;
    assert!(states.is_empty(), "{states:?}");
    assert!(sessions.is_empty(), "{sessions:?}");
}

async fn a_purge_larger_than_its_batches_finishes_on_the_next_run(backend: Backend) {
    let (app, tdb, user) = app_with_user(backend).await;
    let now = Utc::now();
    for i in 0..7 {
        let expires = now - chrono::Duration::minutes(120 + i);
        state(&app, user, &format!("past-{i}"), expires, false).await;
    }
    let mut registry = Registry::new();
    registry.add(
        Arc::new(PurgeExpiredFlows {
            grace: Duration::from_secs(3600),
            batch_size: 2,
            max_batches: 2,
        }),
        None,
    );
    let r = Runner::new(app.clone(), registry, settings(tdb.dir()));
    r.clock().set(now);
    run(&r, "purge_expired_flows").await;
    let result = result_of(&r, "purge_expired_flows").await;
    assert_eq!(result["states_deleted"], 4, "{result}");
    assert_eq!(result["complete"], false, "{result}");
    // The oldest went first.
    let (states, _) = left(&app).await;
    assert_eq!(states, names(&["past-0", "past-1", "past-2"]));

    run(&r, "purge_expired_flows").await;
    let result = result_of(&r, "purge_expired_flows").await;
    assert_eq!(result["states_deleted"], 3, "{result}");
    assert_eq!(result["complete"], true, "{result}");
    assert!(left(&app).await.0.is_empty());
}
