//! The audit hot path for reads (`token.accessed`): thousands per second, so they do not
//! share the request's transaction and must not serialize requests on the chain head.
//!
//! Group commit: a caller hands its entry to a background writer over a bounded channel
//! and waits until the transaction holding it has committed. The writer takes everything
//! queued (up to `MAX_BATCH`) and appends it in ONE transaction, so the chain head is
//! locked once per batch and many concurrent requests share one commit. A token is only
//! handed out once its entry is durable: a crash loses no acknowledged entry (see
//! docs/adr/0003-audit-hot-path.md).
//!
//! Nothing stalls and nothing acknowledged is lost: a full queue or a commit that takes
//! longer than the configured bound answers the caller `Unavailable` (503) at once, while
//! the writer keeps retrying the entry through an outage; a batch the database refuses
//! on data is split until the refused entry is alone, and that entry is written in a safe
//! form (`rescue`), never retried forever.

mod rescue;

use std::{collections::VecDeque, ops::Range, time::Duration};

use chrono::Utc;
use store::{Db, StoreError, audit::NewAuditEntry};
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};

use crate::{
    AppError, Ctx,
    audit::{AuditRecord, entry_hash, to_entry},
};

/// Largest number of entries written in one transaction.
const MAX_BATCH: usize = 512;

/// How the writer and its callers behave (`audit_queue_capacity`, `audit_commit_timeout_ms`
/// in `config/default.toml`).
#[derive(Clone, Copy, Debug)]
pub struct AccessLogSettings {
    /// Entries waiting for the writer; with one more a caller is refused at once.
    pub queue: usize,
    /// Longest a caller waits for its entry to commit before it is refused.
    pub commit_timeout: Duration,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        Self {
            queue: 16_384,
            commit_timeout: Duration::from_secs(5),
        }
    }
}

/// The entry could not be written in any form (see `rescue`).
#[derive(Clone, Copy, Debug)]
struct Lost;

struct Pending {
    entry: NewAuditEntry,
    committed: oneshot::Sender<Result<(), Lost>>,
}

// Entries are the common message: boxing them would allocate once per token read.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Entry(Pending),
    /// Answered once every entry queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// A handle to the background writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Msg>,
    settings: AccessLogSettings,
}

impl AccessLog {
    /// Starts the writer on the current Tokio runtime.
    #[must_use]
    pub fn spawn(db: Db, settings: AccessLogSettings) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        tokio::spawn(run(db, rx));
        Self { tx, settings }
    }

    /// Queues an entry and returns once the transaction holding it has committed.
    ///
    /// # Errors
    /// `Unavailable` when the queue is full, when the commit does not come within the
    /// configured bound (the writer keeps the entry and still writes it once the database
    /// answers), or when the entry could not be written in any form. What could not be
    /// audited must not be served.
    pub async fn record(&self, ctx: &Ctx, rec: AuditRecord) -> Result<(), AppError> {
        let entry = to_entry(ctx, rec, Utc::now());
        let (committed, done) = oneshot::channel();
        match self.tx.try_send(Msg::Entry(Pending { entry, committed })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                crate::metrics::audit_unavailable("queue_full");
                return Err(AppError::Unavailable(
                    "the audit log is not keeping up".into(),
                ));
            }
            Err(TrySendError::Closed(_)) => {
                tracing::error!("audit access log writer is gone; an entry could not be queued");
                return Err(AppError::Unavailable(
                    "the audit log writer has stopped".into(),
                ));
            }
        }
        match tokio::time::timeout(self.settings.commit_timeout, done).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(Lost))) => {
                crate::metrics::audit_unavailable("lost");
                Err(AppError::Unavailable(
                    "the audit entry could not be written".into(),
                ))
            }
            Ok(Err(_)) => Err(AppError::Unavailable(
                "the audit log writer has stopped".into(),
            )),
            Err(_) => {
                crate::metrics::audit_unavailable("timeout");
                Err(AppError::Unavailable(
                    "the audit log is not committing".into(),
                ))
            }
        }
    }

    /// Waits until every entry queued so far is committed (shutdown, tests).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Msg>) {
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    let mut entries = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        for m in msgs.drain(..) {
            match m {
                Msg::Entry(Pending { entry, committed }) => {
                    entries.push(entry);
                    waiters.push(Some(committed));
                }
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        if !entries.is_empty() {
            write_batch(&db, &entries, &mut waiters).await;
            entries.clear();
            waiters.clear();
        }
        // Acks after the write: every entry queued before a flush request is committed.
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Writes `entries` in order, answering each waiter once its entry has committed. A range
/// the database refuses on data is halved until the refused entry is alone, so the good
/// ones around it are written in `log2(n)` extra transactions; that entry is then rescued.
/// Any other failure (an outage) is retried with back-off, never dropped.
async fn write_batch(
    db: &Db,
    entries: &[NewAuditEntry],
    waiters: &mut [Option<oneshot::Sender<Result<(), Lost>>>],
) {
    let mut todo: VecDeque<Range<usize>> = VecDeque::new();
    todo.push_back(0..entries.len());
    let mut retry = Retry::default();
    while let Some(r) = todo.pop_front() {
        let answer = match write(db, &entries[r.clone()]).await {
            Ok(()) => Ok(()),
            Err(e) => match e.data_error_code() {
                Some(_) if r.len() > 1 => {
                    let mid = r.start + r.len() / 2;
                    todo.push_front(mid..r.end);
                    todo.push_front(r.start..mid);
                    continue;
                }
                Some(code) => rescue::save(db, &entries[r.start], &code).await,
                None => {
                    retry.wait(&e, r.len()).await;
                    todo.push_front(r);
                    continue;
                }
            },
        };
        retry = Retry::default();
        for w in &mut waiters[r] {
            if let Some(w) = w.take() {
                // A caller that gave up (timeout, client gone) no longer listens.
                let _ = w.send(answer);
            }
        }
    }
}

/// Back-off between attempts while the database is failing (50 ms doubling to 5 s).
struct Retry(Duration);

impl Default for Retry {
    fn default() -> Self {
        Self(Duration::from_millis(50))
    }
}

impl Retry {
    async fn wait(&mut self, e: &StoreError, entries: usize) {
        tracing::error!(error = %e, entries, "writing audit access entries failed; retrying");
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

async fn write(db: &Db, batch: &[NewAuditEntry]) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    store::audit::append(&txn, batch.to_vec(), entry_hash).await?;
    txn.commit().await?;
    Ok(())
}
