//! `seed --measure`: times the reads whose cost must not grow with the data (issue 17,
//! item 4) through the store functions the service itself calls, on a database seeded by
//! this tool: the refresh sweep's and the health check's work lists (with the jobs'
//! default horizon and batch), a user's first audit page, and 30-day audit stats. Prints
//! the median of several runs of each, in milliseconds.

use std::time::Instant;

use anyhow::Context as _;
use chrono::{Duration, Utc};
use store::{Db, audit::AuditFilter, users::Deleted};

const RUNS: usize = 7;

pub async fn run(db: &Db, users: Option<usize>) -> anyhow::Result<()> {
    let conn = db.current();
    let now = Utc::now();
    // A user from the middle of the seeded range, so neither end of an index is favoured.
    let clerk = format!("user_seed_{}", users.unwrap_or(1) / 2);
    let user = store::users::find_by_clerk_id(conn, &clerk, Deleted::Exclude)
        .await?
        .with_context(|| format!("{clerk} is not in this database: seed it first"))?;
    let page = AuditFilter {
        user_id: Some(user.id),
        ..AuditFilter::default()
    };
    report("refresh sweep work list (70 min horizon, 5000)", || {
        store::token_refresh::expiring_before(conn, now + Duration::minutes(70), 5_000)
    })
    .await?;
    report("health check work list (15 min, 500)", || {
        store::token_refresh::unchecked_since(conn, now - Duration::minutes(15), 500)
    })
    .await?;
    report("a user's audit page (50)", || {
        store::audit::list(conn, &page, 50)
    })
    .await?;
    report("audit stats, 30 days by action", || {
        store::audit::count_by_action(conn, now - Duration::days(30), now)
    })
    .await?;
    report("audit stats, 30 days by day", || {
        store::audit::count_by_day(conn, now - Duration::days(30), now)
    })
    .await?;
    Ok(())
}

/// Runs `query` [`RUNS`] times and prints the median time and how many rows it returned.
#[allow(clippy::print_stdout, reason = "the timings are this command's output")]
async fn report<T, F, Fut>(name: &str, query: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<T>, store::StoreError>>,
{
    let mut times = Vec::with_capacity(RUNS);
    let mut rows = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        rows = query().await?.len();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{name:<50} {:8.2} ms  ({rows} rows)", times[RUNS / 2]);
    Ok(())
}
