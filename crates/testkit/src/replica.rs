//! The streaming replica `scripts/test` starts beside the test Postgres (`TEST_REPLICA_URL`,
//! a `pg_basebackup -R` standby of the server at `TEST_DATABASE_URL`). Tests make it lag on
//! purpose: wait for it to hold their database and to have replayed everything, pause
//! replay, change the primary, and show the service decides on the primary.
//!
//! Pausing replay pauses the whole standby: tests that pause it run one at a time (the
//! `replica` test group in `.config/nextest.toml`).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::TestDb;

/// The standby, connected as superuser (pausing replay needs it).
pub struct Standby {
    admin: String,
}

impl Standby {
    /// The standby named by `TEST_REPLICA_URL`.
    ///
    /// # Panics
    /// When `TEST_REPLICA_URL` is unset: the replica tests fail without a replica, never
    /// skip (`scripts/test` starts one).
    #[must_use]
    pub fn from_env() -> Self {
        let admin = std::env::var("TEST_REPLICA_URL").expect(
            "TEST_REPLICA_URL is not set: the read-replica tests need a streaming replica \
             (scripts/test starts one beside the test Postgres)",
        );
        Self { admin }
    }

    /// The URL of `db`'s database on the standby, once the standby has it (CREATE DATABASE
    /// on the primary replicates).
    ///
    /// # Panics
    /// When `db` is not a Postgres test database or the standby does not get it in 60 s.
    pub async fn url_of(&self, db: &TestDb) -> String {
        let name = db.postgres_name().expect("a Postgres test database");
        let mut conn = self.connect().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(name)
                    .fetch_optional(&mut conn)
                    .await
                    .expect("query the standby");
            if found.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the standby did not receive database {name} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = conn.close().await;
        crate::with_database(&self.admin, name)
    }

    /// Waits until the standby has replayed everything the primary wrote so far.
    ///
    /// # Panics
    /// When it has not within 60 s.
    pub async fn catch_up(&self) {
        let primary = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        let mut p = PgConnection::connect(&primary).await.expect("primary");
        // The insert LSN, not the write LSN: with synchronous_commit off a commit may not be
        // written yet, and the replica must catch up to it all the same.
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut p)
            .await
            .expect("primary LSN");
        let _ = p.close().await;
        let mut conn = self.connect().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done: bool = sqlx::query_scalar(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
            )
            .bind(&lsn)
            .fetch_one(&mut conn)
            .await
            .expect("standby LSN");
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the standby did not replay up to {lsn} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = conn.close().await;
    }

    /// Pauses replay until the returned guard is dropped: from now on the standby lags.
    pub async fn pause(&self) -> Paused {
        let mut conn = self.connect().await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut conn)
            .await
            .expect("pause replay");
        // Paused means replay stopped, not only asked to stop.
        loop {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut conn)
                .await
                .expect("pause state");
            if state == "paused" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = conn.close().await;
        Paused {
            admin: self.admin.clone(),
        }
    }

    /// The count `sql` (`SELECT count(*) …` with one `$1` text parameter) answers on the
    /// standby's copy of a database: what a replica read would see now.
    ///
    /// # Panics
    /// When the standby does not answer.
    pub async fn count(&self, replica_url: &str, sql: &'static str, param: &str) -> i64 {
        let mut conn = PgConnection::connect(replica_url).await.expect("standby");
        let n: i64 = sqlx::query_scalar(sql)
            .bind(param)
            .fetch_one(&mut conn)
            .await
            .expect("standby query");
        let _ = conn.close().await;
        n
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("the standby at TEST_REPLICA_URL does not answer: {e}"))
    }
}

/// Replay is paused while this lives; dropping it resumes replay (also when a test fails).
pub struct Paused {
    admin: String,
}

impl Drop for Paused {
    fn drop(&mut self) {
        crate::admin_statement_blocking(
            self.admin.clone(),
            "SELECT pg_wal_replay_resume()".to_owned(),
        );
    }
}
