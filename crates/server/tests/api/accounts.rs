//! Several accounts per provider (API.md, docs/integrations.md): a user connects Google
//! twice with two accounts of the fake provider; the provider-keyed routes and token
//! requests without `account_id` keep meaning the default account (the first connected),
//! and `account_id` addresses the other. Also the migration that made it possible: rows
//! made before it keep their ids, tokens and answers.

use sea_orm::EntityTrait;
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};
use testkit::store::entities::event_outbox;
use testkit::{Backend, both_backends};

use crate::{
    common::{TestApp, assert_problem},
    connected::{audit_actions, connect, connected, expire_in, post, set_time, token_call},
    fake_provider::{DEFAULT_ACCOUNT, FakeProvider},
    service_key_limits::limited_key,
};

both_backends!(
    a_second_account_is_an_integration_of_its_own,
    disconnecting_one_account_keeps_the_other_and_moves_the_default,
    each_account_refreshes_on_its_own,
    the_proxy_uses_the_account_it_is_told,
    the_sweep_and_the_health_check_take_each_account,
    rows_from_before_the_migration_keep_their_tokens_and_answers,
    a_limited_key_reaches_the_accounts_of_its_providers_only
);

const CLERK: &str = "user_2accounts";
const WORK: &str = "acct-work";

/// An app with Google connected twice for [`CLERK`]: the fake's default account first,
/// then [`WORK`]. Returns the app, the fake, a token service key and the user's session.
async fn two_accounts(backend: Backend) -> (TestApp, FakeProvider, String, String) {
    let (app, fake, key) = connected(backend, CLERK, "google").await;
    let session = app.user_token(CLERK, false);
    fake.sign_in_as(WORK);
    let work = connect(&app, &fake, &session, "google").await;
    assert_eq!(work["account_id"], WORK);
    (app, fake, key, session)
}

async fn integrations(app: &TestApp, session: &str) -> Vec<Value> {
    let body = app.get_json("/users/me/integrations", session).await;
    body["items"].as_array().expect("items").clone()
}

/// The integration of `account` in the list.
fn of<'a>(items: &'a [Value], account: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["account_id"] == account)
        .unwrap_or_else(|| panic!("no integration of {account} in {items:?}"))
}

/// `POST /internal/tokens/{route}` for [`CLERK`]'s Google, with `account_id` when given.
async fn account_call(
    app: &TestApp,
    key: &str,
    route: &str,
    account: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({"user_id": CLERK, "provider": "google"});
    if let Some(a) = account {
        body["account_id"] = json!(a);
    }
    token_call(app, key, route, body).await
}

/// `DELETE /users/me/integrations/google` with `query` (`?account_id=…` or nothing).
async fn disconnect(app: &TestApp, session: &str, query: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/users/me/integrations/google{query}")))
        .bearer_auth(session)
        .send()
        .await
        .expect("delete")
}

async fn token_of(app: &TestApp, key: &str, route: &str, account: Option<&str>) -> Value {
    let res = account_call(app, key, route, account).await;
    assert_eq!(res.status(), 200, "{route} {account:?}");
    res.json().await.expect("json")
}

async fn a_second_account_is_an_integration_of_its_own(backend: Backend) {
    let (app, fake, key, session) = two_accounts(backend).await;
    let items = integrations(&app, &session).await;
    assert_eq!(items.len(), 2, "two integrations: {items:?}");
    let (first, work) = (of(&items, DEFAULT_ACCOUNT), of(&items, WORK));
    assert_ne!(first["id"], work["id"]);
    assert_eq!(
        (first["default"].clone(), work["default"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(work["account_email"], "acct-work@provider.test");

    // Without `account_id`: the default account, as with one account per provider.
    let default = token_of(&app, &key, "get", None).await;
    assert_eq!(default["account_id"], DEFAULT_ACCOUNT);
    assert_eq!(default["account_email"], "someone@provider.test");
    let named = token_of(&app, &key, "get", Some(WORK)).await;
    assert_eq!(named["account_id"], WORK);
    assert_ne!(named["access_token"], default["access_token"]);
    let res = account_call(&app, &key, "get", Some("acct-nobody")).await;
    assert_problem(res, 404, "not_found").await;

    // Reconnecting an account updates its row: still two, the ids and default unchanged.
    fake.sign_in_as(WORK);
    let again = connect(&app, &fake, &session, "google").await;
    assert_eq!(again["id"], work["id"]);
    assert_eq!(again["default"], false);
    let after = integrations(&app, &session).await;
    assert_eq!(after.len(), 2);
    assert_eq!(of(&after, DEFAULT_ACCOUNT)["default"], true);

    // The hand-outs' audit entries say which account.
    let accessed: Vec<Value> = audit_actions(&app, &session)
        .await
        .into_iter()
        .filter(|(a, _)| a == "token.accessed")
        .map(|(_, d)| d)
        .collect();
    assert!(
        accessed
            .iter()
            .any(|d| d["account_id"] == WORK && d["integration_id"] == work["id"])
    );
    assert!(accessed.iter().any(|d| d["account_id"] == DEFAULT_ACCOUNT));

    // So do the events: one `integration.connected` per account.
    let connected: Vec<Value> = event_outbox::Entity::find()
        .all(app.state.app().test_db().writer())
        .await
        .expect("outbox")
        .into_iter()
        .filter(|e| e.event_type == "integration.connected")
        .map(|e| e.payload)
        .collect();
    assert!(
        connected
            .iter()
            .any(|d| d["account_id"] == WORK && d["integration_id"] == work["id"])
    );
    assert!(
        connected
            .iter()
            .any(|d| d["account_id"] == DEFAULT_ACCOUNT && d["integration_id"] == first["id"])
    );
}

async fn disconnecting_one_account_keeps_the_other_and_moves_the_default(backend: Backend) {
    let (app, _fake, key, session) = two_accounts(backend).await;
    let before_work = token_of(&app, &key, "get", Some(WORK)).await;
    let res = disconnect(&app, &session, &format!("?account_id={DEFAULT_ACCOUNT}")).await;
    assert_eq!(res.status(), 204);

    let items = integrations(&app, &session).await;
    assert_eq!(of(&items, DEFAULT_ACCOUNT)["status"], "disconnected");
    assert_eq!(of(&items, DEFAULT_ACCOUNT)["default"], false);
    assert_eq!(of(&items, WORK)["status"], "active");
    assert_eq!(
        of(&items, WORK)["default"],
        true,
        "the next-oldest is the default"
    );

    // The default is now the work account; the disconnected one is gone for tokens.
    let default = token_of(&app, &key, "get", None).await;
    assert_eq!(default["account_id"], WORK);
    assert_eq!(default["access_token"], before_work["access_token"]);
    let res = account_call(&app, &key, "get", Some(DEFAULT_ACCOUNT)).await;
    assert_problem(res, 404, "not_found").await;

    let entries = audit_actions(&app, &session).await;
    let (_, details) = entries
        .iter()
        .find(|(a, _)| a == "integration.disconnected")
        .expect("disconnected entry");
    assert_eq!(details["account_id"], DEFAULT_ACCOUNT);

    // Without `account_id` the route addresses the (new) default.
    let res = disconnect(&app, &session, "").await;
    assert_eq!(res.status(), 204);
    let items = integrations(&app, &session).await;
    assert!(
        items.iter().all(|i| i["status"] == "disconnected"),
        "{items:?}"
    );
    let res = disconnect(&app, &session, "?account_id=acct-nobody").await;
    assert_problem(res, 404, "not_found").await;
}

async fn each_account_refreshes_on_its_own(backend: Backend) {
    let (app, fake, key, session) = two_accounts(backend).await;
    let default = token_of(&app, &key, "get", None).await;
    let refreshed = token_of(&app, &key, "refresh", Some(WORK)).await;
    assert_eq!(refreshed["account_id"], WORK);
    assert_eq!(refreshed["refreshed"], true);
    // The fake rotated the work grant's refresh token only: the default's still works.
    let again = token_of(&app, &key, "get", None).await;
    assert_eq!(
        again["access_token"], default["access_token"],
        "the default was not refreshed"
    );
    let calls = fake.inner.lock().expect("lock").refresh_calls;
    assert_eq!(calls, 1);

    // The owner's manual refresh of one account answers that integration.
    let res = app
        .client
        .put(app.url("/users/me/integrations/google/refresh"))
        .query(&[("account_id", DEFAULT_ACCOUNT)])
        .bearer_auth(&session)
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["account_id"], DEFAULT_ACCOUNT);
    assert_eq!(answer["default"], true);
    let items = integrations(&app, &session).await;
    assert!(of(&items, DEFAULT_ACCOUNT)["last_refreshed_at"].is_string());
    let refreshes: Vec<Value> = audit_actions(&app, &session)
        .await
        .into_iter()
        .filter(|(a, _)| a == "token.refreshed")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert!(
        refreshes
            .iter()
            .any(|d| d["integration_id"] == of(&items, WORK)["id"])
    );

    // Diagnostics of one account show that account's refreshes only.
    let diag = app
        .get_json(
            &format!("/users/me/integrations/google/diagnostics?account_id={WORK}"),
            &session,
        )
        .await;
    assert_eq!(diag["account_id"], WORK);
    assert_eq!(diag["recent_refreshes"].as_array().map(Vec::len), Some(1));
}

async fn the_proxy_uses_the_account_it_is_told(backend: Backend) {
    let (app, fake, key, _session) = two_accounts(backend).await;
    for (account, expected) in [(None, DEFAULT_ACCOUNT), (Some(WORK), WORK)] {
        let mut req = app
            .client
            .get(app.url("/internal/proxy/google/calendar/v3/users/me/calendarList"))
            .header("x-api-key", &key)
            .header("x-user-id", CLERK);
        if let Some(a) = account {
            req = req.header("x-account-id", a);
        }
        let res = req.send().await.expect("proxy");
        assert_eq!(res.status(), 200);
        let call = fake.api_calls().pop().expect("a call");
        assert_eq!(call.account.as_deref(), Some(expected));
        assert!(
            !call.headers.iter().any(|h| h == "x-account-id"),
            "not forwarded"
        );
    }
    let res = app
        .client
        .get(app.url("/internal/proxy/google/calendar/v3/users/me/calendarList"))
        .header("x-api-key", &key)
        .header("x-user-id", CLERK)
        .header("x-account-id", "acct-nobody")
        .send()
        .await
        .expect("proxy");
    assert_problem(res, 404, "not_found").await;
}

/// Runs the job `name` now, as an admin, until the queue is idle.
async fn run_job(app: &TestApp, admin: &str, name: &str) {
    let res = app
        .client
        .post(app.url(&format!("/admin/jobs/{name}/run")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 202);
    app.state.jobs().run_until_idle().await.expect("jobs run");
}

async fn the_sweep_and_the_health_check_take_each_account(backend: Backend) {
    let (app, fake, _key, session) = two_accounts(backend).await;
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    // Both accounts expire soon: the sweep refreshes each with its own grant (the fake
    // refuses one account's refresh token for the other's grant).
    expire_in(&app, 30 * 60).await;
    run_job(&app, &admin, "token_refresh_sweep").await;
    assert_eq!(fake.inner.lock().expect("lock").refresh_calls, 2);
    let items = integrations(&app, &session).await;
    for account in [DEFAULT_ACCOUNT, WORK] {
        assert_eq!(of(&items, account)["status"], "active", "{account}");
        assert!(
            of(&items, account)["last_refreshed_at"].is_string(),
            "{account}"
        );
    }
    // Both overdue for a health check: each is probed with its own token.
    set_time(
        &app,
        testkit::store::entities::integrations::Column::LastCheckedAt,
        -3600,
    )
    .await;
    run_job(&app, &admin, "integration_health").await;
    let items = integrations(&app, &session).await;
    let recent = chrono::Utc::now() - chrono::Duration::minutes(5);
    for account in [DEFAULT_ACCOUNT, WORK] {
        let checked = of(&items, account)["last_checked_at"]
            .as_str()
            .expect("checked");
        let checked: chrono::DateTime<chrono::Utc> = checked.parse().expect("time");
        assert!(checked > recent, "{account} checked: {checked}");
    }
}

/// A user connected while the schema was the previous release's: one row per (user,
/// provider) under `uq_integrations_user_provider`. The migration keeps the row, its id and
/// sealed tokens; the old routes answer as before; a second account can then be added.
async fn rows_from_before_the_migration_keep_their_tokens_and_answers(backend: Backend) {
    let (app, fake, key) = connected(backend, CLERK, "google").await;
    let session = app.user_token(CLERK, false);
    let conn = app.state.app().test_db().writer();
    // Back to the previous schema (the newest migration is this one) with the row in it.
    testkit::store::migration::Migrator::down(conn, Some(1))
        .await
        .expect("down to the previous schema");
    let before_items = integrations(&app, &session).await;
    let before_token = token_of(&app, &key, "get", None).await;
    // A second account cannot be stored under the old index.
    fake.sign_in_as(WORK);
    let res = start_and_complete(&app, &fake, &session).await;
    assert!(
        res.status().is_server_error() || res.status() == 409,
        "old index refuses: {}",
        res.status()
    );
    let _ = res.text().await;

    testkit::store::migration::Migrator::up(conn, None)
        .await
        .expect("the migration");
    assert_eq!(
        integrations(&app, &session).await,
        before_items,
        "same answer"
    );
    let after_token = token_of(&app, &key, "get", None).await;
    assert_eq!(
        after_token["access_token"], before_token["access_token"],
        "same sealed token"
    );
    assert_eq!(after_token["refreshed"], false);
    let refreshed = token_of(&app, &key, "refresh", None).await;
    assert_eq!(
        refreshed["refreshed"], true,
        "the refresh token survived too"
    );

    let work = connect(&app, &fake, &session, "google").await;
    assert_eq!(work["account_id"], WORK);
    let items = integrations(&app, &session).await;
    assert_eq!(items.len(), 2);
    assert_eq!(of(&items, DEFAULT_ACCOUNT)["id"], before_items[0]["id"]);
    assert_eq!(of(&items, DEFAULT_ACCOUNT)["default"], true);
}

/// Authorize and complete, returning the completion's answer whatever it is.
async fn start_and_complete(
    app: &TestApp,
    fake: &FakeProvider,
    session: &str,
) -> reqwest::Response {
    let res = post(
        app,
        session,
        "/users/me/integrations/google/authorize",
        json!({}),
    )
    .await;
    let start: Value = res.json().await.expect("json");
    let (code, state) = fake.consent(start["authorization_url"].as_str().expect("url"));
    post(
        app,
        session,
        "/users/me/integrations/google",
        json!({"code": code, "state": state}),
    )
    .await
}

/// Service-key limits hold whichever account is named: another account of an allowed
/// provider is handed out, an unknown one is 404 as for any key, and a provider outside
/// the key's list or a scope beyond its ceiling is 403 even with a valid `account_id`.
async fn a_limited_key_reaches_the_accounts_of_its_providers_only(backend: Backend) {
    let (app, _fake, _key, _session) = two_accounts(backend).await;
    let google = limited_key(&app, "google-only", &["google"], &[]).await;
    let work = token_of(&app, &google, "get", Some(WORK)).await;
    assert_eq!(work["account_id"], WORK);
    let res = account_call(&app, &google, "get", Some("acct-nobody")).await;
    assert_problem(res, 404, "not_found").await;

    let others = limited_key(&app, "microsoft-only", &["microsoft"], &[]).await;
    for account in [Some(WORK), Some(DEFAULT_ACCOUNT), Some("acct-nobody"), None] {
        let res = account_call(&app, &others, "get", account).await;
        assert_problem(res, 403, "forbidden").await;
    }

    // A ceiling of one of the work account's scopes: asking for it with the account is
    // fine; the token as it is (more scopes than the ceiling) is 403 for that account too.
    let granted: Vec<String> = serde_json::from_value(work["scopes"].clone()).expect("scopes");
    assert!(granted.len() >= 2, "{granted:?}");
    let narrow = limited_key(&app, "narrow", &["google"], &granted[..1]).await;
    let body = json!({"user_id": CLERK, "provider": "google", "account_id": WORK,
        "scopes": [granted[0]]});
    let res = token_call(&app, &narrow, "get", body).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["account_id"], WORK);
    let res = account_call(&app, &narrow, "get", Some(WORK)).await;
    assert_problem(res, 403, "forbidden").await;
}
