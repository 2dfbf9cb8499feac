//! The audit hot path for reads (`token.accessed`): thousands per second, so they do not
//! share the request's transaction and must not serialize requests on the chain head.
//!
//! Callers hand entries to a background writer over a bounded channel and go on. The
//! writer takes everything queued (up to `MAX_BATCH`) and appends it in ONE transaction,
//! so the chain head is locked once per batch, not once per entry. Under load batches grow
//! by themselves while the previous one is being written; when idle an entry is written at
//! once. Nothing is dropped: a full queue makes callers wait (backpressure), a failed write
//! is retried with back-off until it succeeds or the process stops, and `close()` drains
//! the queue. The loss window is a crash (SIGKILL, power): entries queued or in the batch
//! being written — at most one write's duration of them (see docs/adr/0003-audit-hot-path.md).

use std::time::Duration;

use chrono::Utc;
use store::{Db, TransactionTrait, audit::NewAuditEntry};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Ctx,
    audit::{AuditRecord, entry_hash, to_entry},
};

/// Largest number of entries written in one transaction.
const MAX_BATCH: usize = 512;
/// Queue length before callers wait.
const QUEUE: usize = 16_384;

// Entries are the common message: boxing them would allocate once per token read.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Entry(NewAuditEntry),
    /// Answered once every entry queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// A handle to the background writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Msg>,
}

impl AccessLog {
    /// Starts the writer on the current Tokio runtime.
    #[must_use]
    pub fn spawn(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, rx));
        Self { tx }
    }

    /// Queues an entry; waits only when the queue is full.
    pub async fn record(&self, ctx: &Ctx, rec: AuditRecord) {
        let entry = to_entry(ctx, rec, Utc::now());
        if self.tx.send(Msg::Entry(entry)).await.is_err() {
            // The writer only stops with the runtime; say so rather than lose it quietly.
            tracing::error!("audit access log writer is gone; an entry could not be queued");
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
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        for m in msgs.drain(..) {
            match m {
                Msg::Entry(e) => batch.push(e),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        if !batch.is_empty() {
            write_until_ok(&db, &batch).await;
            batch.clear();
        }
        // Acks after the write: every entry queued before a flush request is committed.
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Never drops a batch: retries with back-off until the database takes it.
async fn write_until_ok(db: &Db, batch: &[NewAuditEntry]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match write(db, batch).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "writing audit access entries failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn write(db: &Db, batch: &[NewAuditEntry]) -> Result<(), store::StoreError> {
    let txn = db.writer().begin().await?;
    store::audit::append(&txn, batch.to_vec(), entry_hash).await?;
    txn.commit().await?;
    Ok(())
}
