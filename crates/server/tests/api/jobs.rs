//! Job routes: `/admin/jobs` is for admins, lists every job with its schedule; a manual run
//! answers 202 and shows its outcome; an unknown job is a 404 problem; a failing job
//! retries with growing delays, ends failed after the maximum, and shows its error.
//! Jobs are driven by `run_until_idle` with the runner's clock moved by the test.

use chrono::Utc;
use testkit::both_backends;

use crate::common::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};

both_backends!(
    jobs_are_listed_for_admins_and_run_on_request,
    a_failing_job_retries_with_growing_delays_then_fails
);

async fn jobs(app: &TestApp, token: &str) -> serde_json::Value {
    let res = app
        .client
        .get(app.url("/admin/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

fn item<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} listed: {list}"))
}

async fn post_run(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/admin/jobs/{name}/run")))
        .bearer_auth(token)
        .send()
        .await
        .expect("post")
}

async fn jobs_are_listed_for_admins_and_run_on_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.user_token("user_admin", true);
    let user = app.user_token("user_plain", false);
    app.insert_user("user_admin").await;
    app.insert_user("user_plain").await;

    let res = app
        .client
        .get(app.url("/admin/jobs"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("get");
    assert_problem(res, 403, "forbidden").await;
    let res = post_run(&app, &user, "usage_analytics").await;
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .client
        .get(app.url("/admin/jobs"))
        .send()
        .await
        .expect("get");
    assert_problem(res, 401, "unauthorized").await;

    let list = jobs(&app, &admin).await;
    for name in [
        "purge_users",
        "audit_archive",
        "usage_analytics",
        "backup_verify",
        "key_reencrypt",
        "purge_expired_flows",
    ] {
        let job = item(&list, name);
        assert!(job["schedule"].is_string(), "{job}");
        assert!(job["next_run_at"].is_string(), "{job}");
        assert!(
            job["last_run_at"].is_null()
                && job["last_outcome"].is_null()
                && job["last_error"].is_null(),
            "{job}"
        );
    }
    assert_eq!(item(&list, "purge_users")["schedule"], "30 3 * * *");

    let res = post_run(&app, &admin, "no_such_job").await;
    assert_problem(res, 404, "not_found").await;

    let res = post_run(&app, &admin, "usage_analytics").await;
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["name"], "usage_analytics");
    let done = app.state.jobs().run_until_idle().await.expect("run");
    // A scheduled tick may fall due meanwhile (real clock here); the manual run ran once.
    let mine: Vec<_> = done.iter().filter(|o| o.run_id == body["run_id"]).collect();
    assert_eq!(mine.len(), 1, "{done:?}");
    let job = item(&jobs(&app, &admin).await, "usage_analytics").clone();
    assert_eq!(job["last_outcome"], "succeeded", "{job}");
    assert!(
        job["last_run_at"].is_string() && job["last_error"].is_null(),
        "{job}"
    );
    assert!(
        job["last_result"]["counts"].as_u64().is_some_and(|n| n > 0),
        "{job}"
    );

    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("doc")
        .json()
        .await
        .expect("json");
    assert!(doc["paths"]["/admin/jobs"]["get"].is_object());
    assert!(doc["paths"]["/admin/jobs/{name}/run"]["post"].is_object());
}

async fn a_failing_job_retries_with_growing_delays_then_fails(backend: Backend) {
    // BACKUP_DIR is a regular file: no snapshot can be written there (SQLite) and it cannot
    // be listed (Postgres), so every attempt of backup_verify fails.
    let blocker = tempfile::NamedTempFile::new().expect("file");
    let path = blocker.path().display().to_string();
    // Schedules off: only the run under test is ever due, whatever the time of day.
    let mut env = vec![
        ("BACKUP_DIR", path.as_str()),
        ("JOB_MAX_ATTEMPTS", "4"),
        ("JOB_RETRY_BASE_SECONDS", "10"),
    ];
    let keys: Vec<String> = app::jobs::DEFAULT_SCHEDULES
        .iter()
        .map(|(name, _)| format!("JOB_SCHEDULE_{}", name.to_ascii_uppercase()))
        .collect();
    env.extend(keys.iter().map(|k| (k.as_str(), "")));
    let app = spawn_app_with(backend, &env).await;
    app.insert_user("user_admin").await;
    let admin = app.user_token("user_admin", true);
    let runner = app.state.jobs();
    let mut now = Utc::now();
    runner.clock().set(now);
    assert_eq!(post_run(&app, &admin, "backup_verify").await.status(), 202);

    let mut delays = Vec::new();
    for attempt in 1..=4 {
        let done = runner.run_until_idle().await.expect("run");
        assert_eq!(
            done.len(),
            1,
            "attempt {attempt}: exactly one attempt is due: {done:?}"
        );
        assert_eq!(done[0].attempt, attempt);
        let run = runner
            .runs("backup_verify", 1)
            .await
            .expect("runs")
            .remove(0);
        if attempt < 4 {
            assert_eq!(done[0].outcome, "retry");
            assert_eq!(run.status.as_str(), "pending");
            let delay = (run.run_after - now).num_milliseconds();
            delays.push(delay);
            // Not due a moment before its time: nothing runs.
            runner
                .clock()
                .set(run.run_after - chrono::Duration::seconds(1));
            assert!(runner.run_until_idle().await.expect("run").is_empty());
            let job = item(&jobs(&app, &admin).await, "backup_verify").clone();
            assert_eq!(job["last_outcome"], "retrying", "{job}");
            assert_eq!(
                job["next_run_at"]
                    .as_str()
                    .map(|s| s.parse::<chrono::DateTime<Utc>>().expect("time")),
                Some(run.run_after)
            );
            now = run.run_after;
            runner.clock().set(now);
        } else {
            assert_eq!(done[0].outcome, "failed");
            assert_eq!(run.status.as_str(), "failed");
            assert_eq!(run.attempts, 4);
        }
    }
    // base 10 s doubling, plus up to 50 % jitter: [10, 15), [20, 30), [40, 60) seconds.
    for (i, d) in delays.iter().enumerate() {
        let base = 10_000 * (1 << i);
        assert!((base..base * 3 / 2).contains(d), "delay {i} = {d} ms");
    }
    assert!(
        delays.windows(2).all(|w| w[0] < w[1]),
        "growing: {delays:?}"
    );

    let job = item(&jobs(&app, &admin).await, "backup_verify").clone();
    assert_eq!(job["last_outcome"], "failed", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("BACKUP_DIR")),
        "{job}"
    );
    // Failed for good: that run is never attempted again, even much later.
    let failed_id = runner.runs("backup_verify", 1).await.expect("runs")[0].id;
    runner.clock().set(now + chrono::Duration::days(2));
    runner.run_until_idle().await.expect("run");
    let runs = runner.runs("backup_verify", 10).await.expect("runs");
    let failed = runs.iter().find(|r| r.id == failed_id).expect("kept");
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 4));
}
