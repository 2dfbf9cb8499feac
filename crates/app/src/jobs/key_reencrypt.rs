//! Hourly: when ciphertexts under an inactive key version remain (a key was added to the
//! keyring), re-encrypt a bounded number of batches with the active key. Each batch
//! commits on its own (`App::reencrypt_inactive`), so an interrupted run resumes next time.

use super::{Job, JobCx, JobError, JobFuture};
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
            let outcome = cx
                .app
                .reencrypt_inactive(&Ctx::system(self.name()), self.batch_size, self.max_batches)
                .await?;
            serde_json::to_value(&outcome).map_err(|e| JobError::transient(e.to_string()))
        })
    }
}
