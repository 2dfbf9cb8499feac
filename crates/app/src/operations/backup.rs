//! Backups: prove a restorable one exists (the daily `backup_verify` job).
//!
//! - **SQLite**: `VACUUM INTO` a snapshot under `BACKUP_DIR` (written as `.partial`, checked,
//!   then renamed, so a half-written file never looks like a backup), `PRAGMA
//!   integrity_check` it and compare its row counts with the database at the moment of the
//!   snapshot; re-check the integrity of the snapshots kept from earlier runs (a backup
//!   that rotted on disk is caught); keep the newest `BACKUP_KEEP`. The snapshot holds the
//!   one writer connection while it is written, so writes wait for it (for a database of a
//!   few hundred MB, seconds): hence the quiet-hours default schedule.
//! - **Postgres**: the service does not dump Postgres (that is `pg_dump`/`pg_basebackup`,
//!   run by the operator). The job checks that the newest file in `BACKUP_DIR` is younger
//!   than `BACKUP_MAX_AGE_HOURS` and readable to its end (gzip files are decompressed
//!   fully), and its result says exactly that.

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde_json::{Value, json};
use store::{Backend, backup};

use chrono::{DateTime, Utc};

use crate::{App, jobs::JobError};

/// Where backups are and how many, how old: the settings of the `backup_verify` job.
#[derive(Clone, Debug)]
pub struct BackupPolicy {
    pub dir: PathBuf,
    pub keep: usize,
    pub max_age: Duration,
}

impl App {
    /// Proves a restorable backup exists (see the module doc for what that means on each
    /// engine); `now` and `run_id` name the SQLite snapshot. Answers what was checked.
    ///
    /// # Errors
    /// Naming what is wrong with the backup or why it could not be checked.
    pub async fn verify_backup(
        &self,
        policy: &BackupPolicy,
        now: DateTime<Utc>,
        run_id: i64,
    ) -> Result<Value, JobError> {
        match self.db().backend() {
            Backend::Sqlite => policy.sqlite(self, now, run_id).await,
            Backend::Postgres => policy.postgres().await,
        }
    }
}

const PREFIX: &str = "snapshot-";

impl BackupPolicy {
    async fn sqlite(&self, app: &App, now: DateTime<Utc>, run_id: i64) -> Result<Value, JobError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            JobError::transient(format!(
                "cannot create BACKUP_DIR {}: {e}",
                self.dir.display()
            ))
        })?;
        let name = format!("{PREFIX}{}-{}.db", now.format("%Y%m%dT%H%M%SZ"), run_id);
        let path = self.dir.join(&name);
        let partial = self.dir.join(format!("{name}.partial"));
        // A retry after an interruption starts over.
        let _ = std::fs::remove_file(&partial);
        let counts = backup::sqlite_snapshot(app.db(), &partial)
            .await
            .map_err(|e| JobError::transient(format!("VACUUM INTO {}: {e}", partial.display())))?;
        let check = backup::check_sqlite_snapshot(&partial, Some(&counts))
            .await
            .map_err(|e| JobError::transient(format!("snapshot {name} unreadable: {e}")))?;
        if !check.is_ok() {
            return Err(JobError::transient(format!(
                "snapshot {name} failed verification: {}",
                describe(&check)
            )));
        }
        std::fs::rename(&partial, &path)
            .map_err(|e| JobError::transient(format!("renaming {name}: {e}")))?;
        let mut snapshots = snapshots(&self.dir)?;
        let mut bad = Vec::new();
        for older in snapshots.iter().filter(|p| **p != path) {
            let label = older
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match backup::check_sqlite_snapshot(older, None).await {
                Ok(c) if c.is_ok() => {}
                Ok(c) => bad.push(format!("{label}: {}", describe(&c))),
                Err(e) => bad.push(format!("{label}: {e}")),
            }
        }
        // Newest last (names sort by time); drop the oldest beyond `keep`.
        while snapshots.len() > self.keep.max(1) {
            let old = snapshots.remove(0);
            let _ = std::fs::remove_file(old);
        }
        if !bad.is_empty() {
            return Err(JobError::transient(format!(
                "new snapshot {name} is sound, but kept snapshots are corrupt: {}",
                bad.join("; ")
            )));
        }
        Ok(json!({
            "mode": "sqlite: VACUUM INTO snapshot, integrity_check ok, row counts match",
            "snapshot": path.display().to_string(),
            "row_counts": counts.iter().map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "snapshots_kept": snapshots.len(),
        }))
    }

    async fn postgres(&self) -> Result<Value, JobError> {
        let dir = self.dir.clone();
        let max_age = self.max_age;
        tokio::task::spawn_blocking(move || check_backup_file(&dir, max_age))
            .await
            .map_err(|e| JobError::transient(format!("backup check task failed: {e}")))?
    }
}

/// The Postgres check: the newest regular file in `dir` is younger than `max_age`, not
/// empty, and readable to its end (decompressed when it ends in `.gz`).
///
/// # Errors
/// Naming what is wrong: no folder, no file, too old, empty, unreadable or corrupt.
pub fn check_backup_file(dir: &Path, max_age: Duration) -> Result<Value, JobError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        JobError::transient(format!("BACKUP_DIR {} cannot be read: {e}", dir.display()))
    })?;
    let newest = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file()
                .then(|| (meta.modified().ok(), e.path(), meta.len()))
        })
        .max_by_key(|(m, p, _)| (*m, p.clone()));
    let Some((modified, path, size)) = newest else {
        return Err(JobError::transient(format!(
            "no backup file in BACKUP_DIR {}",
            dir.display()
        )));
    };
    let age = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age > max_age {
        return Err(JobError::transient(format!(
            "newest backup {} is {} hours old (limit {})",
            path.display(),
            age.as_secs() / 3600,
            max_age.as_secs() / 3600
        )));
    }
    if size == 0 {
        return Err(JobError::transient(format!(
            "newest backup {} is empty",
            path.display()
        )));
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| JobError::transient(format!("backup {} unreadable: {e}", path.display())))?;
    let gz = path.extension().is_some_and(|x| x == "gz");
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let read = std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| {
        JobError::transient(format!(
            "backup {} is corrupt or unreadable: {e}",
            path.display()
        ))
    })?;
    Ok(json!({
        "mode": "postgres: this service does not dump Postgres; checked that the newest file in BACKUP_DIR is recent and readable to its end",
        "file": path.display().to_string(),
        "bytes": size,
        "bytes_read": read,
        "decompressed": gz,
        "age_seconds": age.as_secs(),
    }))
}

fn snapshots(dir: &Path) -> Result<Vec<PathBuf>, JobError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| JobError::transient(format!("reading {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".db"))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn describe(c: &backup::SnapshotCheck) -> String {
    let mut parts: Vec<String> = c.integrity_errors.iter().take(5).cloned().collect();
    parts.extend(c.count_mismatches.iter().cloned());
    parts.join(", ")
}
