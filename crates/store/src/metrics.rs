//! Database metrics. Query durations come from SeaORM's per-statement callback, installed
//! on every pool when it is opened: one seam that sees every statement (repositories,
//! transactions, migrations) without timing code in each repository function. Labels are
//! the SQL verb and the table the statement names, both from SQL this crate wrote (values
//! travel as bind parameters), so they are bounded and never hold user data.

use std::time::Duration;

/// Histogram: seconds per statement, by `operation` (`select`, `insert`, …), `table` and
/// `outcome` (`ok` / `error`).
pub const DB_QUERY_DURATION: &str = "user_service_db_query_duration_seconds";
/// Gauge: connections of a pool in use, by `pool` (`primary`, `reader`, `writer`).
pub const DB_POOL_IN_USE: &str = "user_service_db_pool_connections_in_use";
/// Gauge: idle connections of a pool, by `pool`.
pub const DB_POOL_IDLE: &str = "user_service_db_pool_connections_idle";
/// Gauge: the largest size of a pool, by `pool`.
pub const DB_POOL_MAX: &str = "user_service_db_pool_connections_max";

/// The size of one pool at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `primary` (Postgres without a replica: reads and writes), `writer`, `reader`.
    pub pool: &'static str,
    /// Connections open (in use and idle).
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

impl PoolStats {
    /// Connections checked out.
    #[must_use]
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// The callback SeaORM calls after each statement.
pub(crate) fn record_statement(info: &sea_orm::metric::Info<'_>) {
    let (operation, table) = classify(&info.statement.sql);
    observe(operation, table, info.failed, info.elapsed);
}

fn observe(operation: &'static str, table: String, failed: bool, elapsed: Duration) {
    metrics::histogram!(
        DB_QUERY_DURATION,
        "operation" => operation,
        "table" => table,
        "outcome" => if failed { "error" } else { "ok" },
    )
    .record(elapsed.as_secs_f64());
}

/// The verb and the table of a statement written by this crate.
pub(crate) fn classify(sql: &str) -> (&'static str, String) {
    let trimmed = sql.trim_start();
    let verb = trimmed
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    let operation = match verb.to_ascii_uppercase().as_str() {
        "SELECT" | "WITH" => "select",
        "INSERT" => "insert",
        "UPDATE" => "update",
        "DELETE" => "delete",
        "BEGIN" | "START" | "SAVEPOINT" => "begin",
        "COMMIT" | "RELEASE" => "commit",
        "ROLLBACK" => "rollback",
        _ => "other",
    };
    let keyword = match operation {
        "select" | "delete" => Some(" FROM "),
        "insert" => Some(" INTO "),
        "update" => Some("UPDATE "),
        _ => None,
    };
    let table = keyword
        .and_then(|k| find_ci(trimmed, k).map(|i| &trimmed[i + k.len()..]))
        .and_then(identifier)
        .unwrap_or_else(|| "-".to_owned());
    (operation, table)
}

/// Case-insensitive search for an ASCII keyword.
fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// The (optionally quoted) identifier at the start of `s`, when it looks like one of our
/// table names: lower-case letters, digits and `_`, at most 64 characters.
fn identifier(s: &str) -> Option<String> {
    let s = s.trim_start().trim_start_matches(['"', '`']);
    let end = s
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let id = &s[..end];
    (!id.is_empty() && id.len() <= 64).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn statements_are_classified_by_verb_and_table() {
        let cases = [
            (
                r#"SELECT "users"."id" FROM "users" WHERE "users"."id" = $1"#,
                ("select", "users"),
            ),
            (
                r#"INSERT INTO "audit_log" ("id") VALUES (?)"#,
                ("insert", "audit_log"),
            ),
            (r#"UPDATE "users" SET "email" = $1"#, ("update", "users")),
            (
                r#"DELETE FROM "service_keys" WHERE "id" = $1"#,
                ("delete", "service_keys"),
            ),
            ("BEGIN", ("begin", "-")),
            ("SELECT 1", ("select", "-")),
            ("CREATE TABLE x (id int)", ("other", "-")),
        ];
        for (sql, (op, table)) in cases {
            assert_eq!(classify(sql), (op, table.to_owned()), "{sql}");
        }
    }
}
