//! What one connection is doing, for its two clocks: idle (no request in flight, no byte
//! of a new one: the keep-alive timeout runs) → reading a head (a first byte arrived: the
//! header-read timeout runs) → busy (a request is being handled: no clock; the request
//! timeout of the router applies) → idle again once the response body is done.
//!
//! hyper's own header timer starts when a connection turns idle, so it would close every
//! kept-alive connection after the (short) head timeout: this clock starts at the first
//! byte instead, as nginx's `client_header_timeout` does.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf},
    net::TcpStream,
    sync::{Notify, Semaphore},
};

use crate::config::ConnectionLimits;

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request since then.
    Idle(Instant),
    /// The first byte of a request head arrived then.
    Head(Instant),
    /// Requests in flight (HTTP/1: one, but counting is cheaper than proving it).
    Busy(usize),
}

/// The phase of one connection, shared by its socket, its requests and its watchdog.
#[derive(Debug)]
pub(super) struct Activity {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when a head begins: the only change that brings a deadline
    /// closer (when the head timeout is the shorter one).
    head_began: Notify,
    /// Close by lingering (see [`Watched`]'s `Drop`): hyper answered an error (431, 400)
    /// while the client may still be sending.
    linger: AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            head_began: Notify::new(),
            linger: AtomicBool::new(false),
        }
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *phase = f(*phase);
    }

    fn phase(&self) -> Phase {
        *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The socket is to be closed by lingering once hyper lets go of it.
    pub(super) fn linger_on_close(&self) {
        self.linger.store(true, Ordering::Release);
    }

    /// Bytes arrived: on an idle connection, a request head has begun.
    fn bytes_read(&self) {
        let mut began = false;
        self.update(|p| match p {
            Phase::Idle(_) => {
                began = true;
                Phase::Head(Instant::now())
            }
            other => other,
        });
        if began {
            self.head_began.notify_one();
        }
    }

    /// hyper parsed a head and calls the service: busy until the guard is dropped.
    pub(super) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.update(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        RequestGuard(Arc::clone(self))
    }

    fn end_request(&self) {
        self.update(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }

    /// Resolves with the reason (`idle`, `header_timeout`) once a clock has run out.
    /// Apart from a head beginning (which wakes it), every change moves the deadline
    /// later, so sleeping until the one seen and looking again is exact.
    pub(super) async fn expired(&self, limits: &ConnectionLimits) -> &'static str {
        let busy_recheck = limits.keep_alive_timeout.min(limits.header_read_timeout);
        loop {
            let deadline = match self.phase() {
                Phase::Idle(t) => t + limits.keep_alive_timeout,
                Phase::Head(t) => t + limits.header_read_timeout,
                Phase::Busy(_) => Instant::now() + busy_recheck,
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                () = self.head_began.notified() => continue,
            }
            let now = Instant::now();
            match self.phase() {
                Phase::Idle(t) if t + limits.keep_alive_timeout <= now => return "idle",
                Phase::Head(t) if t + limits.header_read_timeout <= now => {
                    return "header_timeout";
                }
                _ => {}
            }
        }
    }
}

/// Marks its request finished when dropped: with the response body (sent, or abandoned
/// because the connection closed).
#[derive(Debug)]
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// Lingering closes at once; past it a socket is closed outright.
static LINGERING: Semaphore = Semaphore::const_new(64);
/// Longest a lingering close waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(1);

/// The socket, telling its [`Activity`] when bytes arrive.
pub(super) struct Watched {
    inner: Option<TcpStream>,
    activity: Arc<Activity>,
}

impl Watched {
    pub(super) fn new(inner: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            inner: Some(inner),
            activity,
        }
    }

    fn stream(&mut self) -> std::io::Result<&mut TcpStream> {
        self.inner
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

/// Closing a socket with unread bytes sends a reset, and a reset can destroy the answer
/// (a 431) before the client has read it. So after an error answer the socket is shut
/// for writing (the client sees the end of the answer) and read to its end, for a second
/// at most, before it is closed: nginx's `lingering_close`.
impl Drop for Watched {
    fn drop(&mut self) {
        let Some(mut stream) = self.inner.take() else {
            return;
        };
        if !self.activity.linger.load(Ordering::Acquire) {
            return;
        }
        let Ok(permit) = LINGERING.try_acquire() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(LINGER, async {
                stream.shutdown().await?;
                let mut sink = [0u8; 8192];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(this.stream()?).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().stream()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().stream()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().stream()?).poll_shutdown(cx)
    }
}

/// A response body that holds its request's [`RequestGuard`] until hyper is done with it.
pub(super) struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    pub(super) fn new(inner: Body, guard: RequestGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
