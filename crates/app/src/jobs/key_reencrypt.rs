//! Hourly: when ciphertexts under an inactive key version remain (a key was added to the
//! keyring), re-encrypt a bounded number of batches with the active key. Each batch
//! commits on its own ([`App::rotate_keys`]), so an interrupted run resumes next time.

use serde_json::json;

use super::{Job, JobCx, JobFuture};
use crate::Ctx;

/// The key re-encryption job.
#[derive(Clone, Debug)]
pub struct KeyReencrypt {
    pub batch_size: u64,
    pub max_batches: u64,
}

impl Job for KeyReencrypt {
    fn name(&self) -> &'static str {
        "key_reencrypt"
    }

    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let status = cx.app.key_status().await?;
            let active = status.active_version.to_string();
            let inactive_in_use: u64 = status
                .ciphertexts_by_version
                .iter()
                .filter(|(v, _)| **v != active)
                .map(|(_, n)| n)
                .sum();
            if inactive_in_use == 0 {
                return Ok(
                    json!({"skipped": "no ciphertext under an inactive key version", "active_version": status.active_version}),
                );
            }
            let report = cx
                .app
                .rotate_keys(
                    &Ctx::system(self.name()),
                    self.batch_size.max(1),
                    Some(self.max_batches.max(1)),
                )
                .await?;
            Ok(json!({
                "active_version": status.active_version,
                "under_inactive_versions_before": inactive_in_use,
                "rotated": report.rotated,
                "skipped": report.skipped,
                "failed": report.failed,
                "complete": report.complete,
            }))
        })
    }
}
