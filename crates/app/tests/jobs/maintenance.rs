//! The maintenance jobs that guard data at rest: backup verification catches a corrupted
//! backup, and key re-encryption moves ciphertexts off inactive key versions.

use super::*;

both_backends!(
    backup_verification_catches_a_corrupted_backup,
    key_reencrypt_moves_ciphertexts_off_inactive_versions,
);

async fn backup_verification_catches_a_corrupted_backup(backend: Backend) {
    let (app, tdb) = app(backend, KEY1).await;
    user_with_integration(&app, "user_backup", "google").await;
    let r = runner(&app, &tdb);
    let dir = tdb.dir().join("backups");
    let now = Utc::now();
    r.clock().set(now);
    match backend {
        Backend::Sqlite => {
            let done = run(&r, "backup_verify").await;
            assert_eq!(done[0].outcome, "succeeded", "{done:?}");
            let snapshot = std::fs::read_dir(&dir)
                .expect("backups")
                .map(|e| e.expect("entry").path())
                .find(|p| p.extension().is_some_and(|x| x == "db"))
                .expect("a snapshot");
            let result = r.runs("backup_verify", 1).await.expect("runs")[0]
                .result
                .clone()
                .expect("result");
            assert_eq!(result["row_counts"]["users"], 1, "{result}");
            // Rot on disk: every page after the first overwritten.
            let mut bytes = std::fs::read(&snapshot).expect("read");
            assert!(bytes.len() > 8192, "snapshot has several pages");
            for b in &mut bytes[4096..] {
                *b = 0xA5;
            }
            std::fs::write(&snapshot, bytes).expect("corrupt");
            r.clock().set(now + chrono::Duration::days(1));
            let done = run(&r, "backup_verify").await;
            assert_eq!(done[0].outcome, "retry", "{done:?}");
            let error = done[0].error.clone().unwrap_or_default();
            let name = snapshot
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            assert!(
                error.contains(&name) && error.contains("corrupt"),
                "{error}"
            );
        }
        Backend::Postgres => {
            std::fs::create_dir_all(&dir).expect("dir");
            let done = run(&r, "backup_verify").await;
            assert_eq!(done[0].outcome, "retry");
            assert!(
                done[0]
                    .error
                    .clone()
                    .unwrap_or_default()
                    .contains("no backup file"),
                "{done:?}"
            );

            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut gz, &b"-- PostgreSQL database dump\n".repeat(1000))
                .expect("gz");
            let good = gz.finish().expect("gz");
            std::fs::write(dir.join("dump-1.sql.gz"), &good).expect("write");
            r.clock().set(now + chrono::Duration::hours(1));
            let done = run(&r, "backup_verify").await;
            assert_eq!(done[0].outcome, "succeeded", "{done:?}");
            let status = r.status().await.expect("status");
            let job = status
                .iter()
                .find(|s| s.name == "backup_verify")
                .expect("job");
            let mode = job.last_result.as_ref().expect("result")["mode"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                mode.contains("does not dump Postgres"),
                "the status says what was checked: {mode}"
            );

            // A newer, truncated dump: the newest backup is corrupt. The older file is dated
            // back a minute so "newest" does not depend on the file system's clock resolution.
            std::fs::File::options()
                .write(true)
                .open(dir.join("dump-1.sql.gz"))
                .expect("open")
                .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
                .expect("mtime");
            std::fs::write(dir.join("dump-2.sql.gz"), &good[..good.len() / 2]).expect("write");
            r.clock().set(now + chrono::Duration::hours(2));
            let done = run(&r, "backup_verify").await;
            let last = done
                .iter()
                .rev()
                .find(|o| o.job == "backup_verify")
                .expect("run");
            assert_eq!(last.outcome, "retry", "{done:?}");
            let error = last.error.clone().unwrap_or_default();
            assert!(
                error.contains("dump-2.sql.gz") && error.contains("corrupt"),
                "{error}"
            );
        }
    }
}

async fn key_reencrypt_moves_ciphertexts_off_inactive_versions(backend: Backend) {
    let (v1, tdb) = app(backend, KEY1).await;
    for i in 0..3 {
        let (user, integration) = user_with_integration(&v1, &format!("user_k{i}"), "google").await;
        seal_token(&v1, user, integration).await;
    }
    let both = reopen(&tdb, &format!("{KEY1},{KEY2}")).await;
    let r = runner(&both, &tdb);
    r.clock().set(Utc::now());
    run(&r, "key_reencrypt").await;
    let status = both.key_status().await.expect("status");
    assert_eq!(status.ciphertexts_by_version["1"], 0);
    assert_eq!(status.ciphertexts_by_version["2"], 3);
    run(&r, "key_reencrypt").await;
    let result = r.runs("key_reencrypt", 1).await.expect("runs")[0]
        .result
        .clone()
        .expect("result");
    assert!(
        result["skipped"].is_string(),
        "nothing left to do: {result}"
    );
}
