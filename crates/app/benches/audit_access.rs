//! Audit entries per second on SQLite and Postgres: one transaction per entry (how a
//! change is audited) against the batched access-log writer (how `token.accessed` is),
//! both from 50 concurrent producers, in the same run. Needs `TEST_DATABASE_URL` for the
//! Postgres half (scripts/bench sets it up); it fails without it rather than skip.
//!
//! `cargo bench -p app --bench audit_access`

use std::time::{Duration, Instant};

use domain::{UserId, audit::AuditAction};
use store::{Db, DbOptions, TransactionTrait};
use testkit::{Backend, TestDb};

const PRODUCERS: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let direct = measure(backend, false, 40).await;
        let batched = measure(backend, true, 400).await;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{backend:?}: direct {direct:.0} entries/s, batched {batched:.0} entries/s, ratio {:.1}x",
                batched / direct
            );
        }
    }
}

fn record() -> app::audit::AuditRecord {
    app::audit::AuditRecord::new(AuditAction::TokenAccessed, Some(UserId::new()))
        .resource("integration", "google")
        .details(
            serde_json::json!({"service": "mailer", "scopes": ["gmail.readonly"], "outcome": "ok"}),
        )
}

/// Entries per second written by PRODUCERS tasks each writing `per_producer` entries.
async fn measure(backend: Backend, batched: bool, per_producer: usize) -> f64 {
    let tdb = TestDb::new(backend).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let app = app::App::new(db, vault::Vault::new(vault::Keyring::generate_dev()));
    let ctx = app::Ctx::system("bench");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..PRODUCERS {
        let app = app.clone();
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_producer {
                if batched {
                    app.access_log()
                        .record(&ctx, record())
                        .await
                        .expect("committed");
                } else {
                    let txn = app.test_db().writer().begin().await.expect("begin");
                    app::audit::record(&txn, &ctx, record())
                        .await
                        .expect("record");
                    txn.commit().await.expect("commit");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    app.access_log().flush().await;
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let n = PRODUCERS * per_producer;
    let report = app
        .verify_audit_chain()
        .await
        .expect("db")
        .expect("chain verifies");
    assert_eq!(report.entries as usize, n, "every entry written");
    app.shutdown().await;
    n as f64 / elapsed.as_secs_f64()
}
