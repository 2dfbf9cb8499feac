//! Test support shared by the storage story and the API tests: every test gets a database
//! of its own, on SQLite (a temporary file) or Postgres (a new database on the server named
//! by `TEST_DATABASE_URL`, dropped afterwards). A Postgres test without `TEST_DATABASE_URL`
//! fails: the suite never skips a backend silently. `scripts/test` starts a throwaway server.
//! [`fixtures`] builds the user and integration rows tests start from.
//! [`FaultProxy`] puts a TCP proxy the test can cut between the service and a dependency.
#![forbid(unsafe_code)]

pub mod fixtures;
pub mod replica;

mod fault_proxy;

pub use fault_proxy::{FaultProxy, Mode as ProxyMode};
use sqlx::{Connection, PgConnection};
/// Storage itself, for the tests of crates that reach it only through `app` (the server's):
/// rows to arrange or read, migrations to undo.
pub use store;

/// The database engines every storage and API test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    url: String,
    backend: Backend,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    /// For Postgres when `TEST_DATABASE_URL` is unset or the server does not answer: a
    /// suite that needs Postgres must fail without it, not skip.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Self {
                    url,
                    backend,
                    dir,
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect(
                    "TEST_DATABASE_URL is not set: the Postgres half of the suite needs a server \
                     (scripts/test starts a throwaway one)",
                );
                let name = format!("us_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("Postgres at TEST_DATABASE_URL does not answer: {e}")
                });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
                let _ = conn.close().await;
                let url = with_database(&admin, &name);
                Self {
                    url,
                    backend,
                    dir,
                    postgres: Some((admin, name)),
                }
            }
        }
    }

    /// The URL of this test's database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name on the Postgres server (`None` on SQLite).
    #[must_use]
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }

    /// Which engine it is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A temporary folder that lives as long as the database (for data_dir and the like).
    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        admin_statement_blocking(
            admin,
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

/// `postgres://u:p@h:port/admin?x` → the same URL naming database `name`.
pub(crate) fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Declares one `#[tokio::test]` per backend for each named `async fn(Backend)`:
/// `both_backends!(creates_user);` makes `creates_user::sqlite` and `creates_user::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// Runs one statement on the Postgres at `admin`, blocking, from inside a test's runtime
/// (a `Drop`): on a fresh thread with its own runtime, errors ignored (cleanup is best
/// effort; the server is thrown away after the run).
pub(crate) fn admin_statement_blocking(admin: String, sql: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_urls() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(
            super::with_database("postgres://h/postgres?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5", "x"),
            "postgres://h:5/x"
        );
    }
}
