//! How a recorded statement is explained on each engine, and the connection that records.

use super::*;

/// Explains recorded statements and keeps what scans in full.
pub(super) struct Checks<'a> {
    conn: &'a DatabaseConnection,
    pub(super) failures: Vec<String>,
}

impl<'a> Checks<'a> {
    pub(super) fn new(conn: &'a DatabaseConnection) -> Self {
        Self {
            conn,
            failures: Vec::new(),
        }
    }

    /// The planner chooses as it would in production. One of `indexes` must appear in the
    /// plans: for a range or a work list, searching *an* index is not enough (SQLite
    /// happily "searches" `status IN (…)`, which matches nearly every row).
    pub(super) async fn honest(&mut self, name: &str, r: &Recorder<'_>, indexes: &[&str]) {
        self.check(name, r, false, indexes).await;
    }

    /// For a table that is small by construction: Postgres rightly scans a few rows, so
    /// the plan is asked for with sequential scans priced out; a `Seq Scan` still shown
    /// means no index could serve the statement.
    pub(super) async fn without_seqscan(&mut self, name: &str, r: &Recorder<'_>) {
        self.check(name, r, true, &[]).await;
    }

    pub(super) async fn check(
        &mut self,
        name: &str,
        r: &Recorder<'_>,
        seqscan_off: bool,
        indexes: &[&str],
    ) {
        let statements = r.take();
        assert!(!statements.is_empty(), "{name}: no statement was run");
        let mut plans = Vec::new();
        for s in statements {
            let txn = self.conn.begin().await.expect("begin");
            if seqscan_off && txn.get_database_backend() == DbBackend::Postgres {
                txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                    .await
                    .expect("set");
            }
            let (scans, plan) = explain(&txn, &s).await;
            txn.rollback().await.expect("rollback");
            if std::env::var_os("PLANS_PRINT").is_some() {
                eprintln!("{name}: {plan}");
            }
            if !scans.is_empty() {
                self.failures.push(format!(
                    "{name}: full scan of {scans:?}\n  statement: {}\n  plan: {plan}",
                    s.sql
                ));
            }
            plans.push(plan);
        }
        let all = plans.join("\n");
        if !indexes.is_empty() && !indexes.iter().any(|i| all.contains(i)) {
            self.failures
                .push(format!("{name}: uses none of {indexes:?}\n  plans: {all}"));
        }
    }
}

/// The tables `s` scans in full, and its plan as text.
pub(super) async fn explain(conn: &impl ConnectionTrait, s: &Statement) -> (Vec<String>, String) {
    let backend = conn.get_database_backend();
    let prefix = match backend {
        DbBackend::Postgres => "EXPLAIN (FORMAT JSON) ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let stmt = Statement {
        sql: format!("{prefix}{}", s.sql),
        values: s.values.clone(),
        db_backend: backend,
    };
    let rows = conn.query_all_raw(stmt).await.expect("explain");
    if backend == DbBackend::Postgres {
        let plan: serde_json::Value = rows[0].try_get("", "QUERY PLAN").expect("plan");
        let mut scans = Vec::new();
        seq_scans(&plan, &mut scans);
        return (scans, plan.to_string());
    }
    let details: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "detail").expect("detail"))
        .collect();
    let scans = details
        .iter()
        .filter(|d| {
            d.starts_with("SCAN ")
                && !d.contains("USING INDEX")
                && !d.contains("USING COVERING INDEX")
        })
        .cloned()
        .collect();
    (scans, details.join("; "))
}

/// The relations of every `Seq Scan` node in a Postgres JSON plan.
pub(super) fn seq_scans(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Array(items) => items.iter().for_each(|n| seq_scans(n, out)),
        serde_json::Value::Object(map) => {
            if map.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
                let rel = map.get("Relation Name").and_then(|r| r.as_str());
                out.push(rel.unwrap_or("?").to_owned());
            }
            map.values().for_each(|v| seq_scans(v, out));
        }
        _ => {}
    }
}

/// Postgres: fresh statistics, as autovacuum keeps them. SQLite: nothing (see above).
pub(super) async fn analyze(conn: &DatabaseConnection) {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_unprepared("ANALYZE").await.expect("analyze");
    }
}

/// A connection that keeps every statement it runs.
pub(super) struct Recorder<'a> {
    conn: &'a DatabaseConnection,
    seen: Mutex<Vec<Statement>>,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(conn: &'a DatabaseConnection) -> Self {
        Self {
            conn,
            seen: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn keep(&self, s: &Statement) {
        self.seen.lock().expect("lock").push(s.clone());
    }

    /// The statements run since the last call.
    pub(super) fn take(&self) -> Vec<Statement> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl ConnectionTrait for Recorder<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.keep(&stmt);
        self.conn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.keep(&Statement::from_string(self.get_database_backend(), sql));
        self.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.keep(&stmt);
        self.conn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.keep(&stmt);
        self.conn.query_all_raw(stmt).await
    }
}
