//! `user-service probe URL`: the container health check (the runtime image has no curl).

use testkit::both_backends;

use crate::common::{Backend, spawn_app_with};

both_backends!(probe_succeeds_only_on_200);

fn probe(url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_user-service"))
        .args(["probe", url])
        // A health check must not depend on the configuration it probes.
        .env("DATABASE_URL", "not a url")
        .output()
        .expect("binary runs")
}

async fn probe_succeeds_only_on_200(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let ready = probe(&app.url("/ready"));
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    let missing = probe(&app.url("/no-such-route"));
    assert!(!missing.status.success(), "a 404 is not healthy");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    app.state.begin_shutdown();
    let draining = probe(&app.url("/ready"));
    assert!(
        !draining.status.success(),
        "a 503 while shutting down is not healthy"
    );
    let closed = probe("http://127.0.0.1:1/ready");
    assert!(!closed.status.success(), "nothing listening is not healthy");
}
