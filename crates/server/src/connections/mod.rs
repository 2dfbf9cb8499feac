//! The HTTP/1 server loop (what `axum::serve` did, with the knobs it hides): at most
//! `max_client_connections` connections at once, the one above answered 503 and closed; a
//! request head larger than `max_request_head_bytes` answered 431 by hyper; a head not
//! complete `header_read_timeout_seconds` after its first byte, or a connection idle for
//! `keep_alive_timeout_seconds`, closed. The peer address goes into every request as
//! `ConnectInfo<SocketAddr>` (rate limits, audit meta), as
//! `into_make_service_with_connect_info` did. On shutdown the listener closes, every
//! connection finishes its request in flight and closes, and [`serve`] returns.

mod activity;

use std::{future::Future, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};
use tower::ServiceExt as _;

use crate::config::ConnectionLimits;
use activity::{Activity, GuardedBody, Watched};

/// Refusals being written at once; past it a connection over the cap is just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// Longest a refusal may take to write and linger before its socket is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` under `limits` until `shutdown` resolves, then drains:
/// returns once every connection has closed (callers bound the wait).
///
/// # Errors
/// Never today; accept errors are logged and retried, as hyper's server did.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                crate::metrics::connection_opened();
                tokio::spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    stop_rx.clone(),
                    permit,
                ));
            }
            Err(_) => {
                crate::metrics::connection_closed("over_limit");
                tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
                refuse(stream, &refusals);
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it has closed: all of them back means drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// As hyper's server did: a peer that gave up before its connection was accepted is no
/// error; anything else (EMFILE: out of file descriptors) is logged and waited out.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, served until it closes, its limits expire or shutdown drains it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = requests.begin_request();
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let res = router.oneshot(req.map(Body::new)).await;
            res.map(|r| r.map(|body| GuardedBody::new(body, guard)))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // Our own clock (see `activity`): hyper's header timer would start when the
        // connection turns idle, closing kept-alive connections after the head timeout.
        .header_read_timeout(None)
        .max_header_size(limits.max_request_head_bytes)
        // The read buffer never grows past the head limit: a client streaming an endless
        // head gets 431 once it is full, and holds at most that much memory.
        .max_buf_size(limits.max_request_head_bytes.max(8192));
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    let reason = loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // hyper answered a head it refused (431, 400) and stops reading: the
                    // rest of what the client sends must not reset the answer away.
                    if e.is_parse() || e.is_parse_too_large() {
                        activity.linger_on_close();
                    }
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break None;
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            reason = activity.expired(&limits) => break Some(reason),
        }
    };
    if let Some(reason) = reason {
        tracing::debug!(%peer, reason, "connection closed by a limit");
        crate::metrics::connection_closed(reason);
    }
    crate::metrics::connection_dropped();
}

/// Answers a connection over the cap with a 503 problem and closes it. The answer goes
/// out before the request is read, then the socket lingers (reading and discarding) for
/// at most a second so the client reads the 503 instead of a reset.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = Arc::clone(refusals).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            stream.write_all(refusal().as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

/// The raw HTTP answer of a refused connection: a 503 problem (no request was read, so
/// it names no instance).
fn refusal() -> String {
    let code = domain::ErrorCode::ServiceUnavailable;
    let body = serde_json::json!({
        "type": code.as_str(),
        "title": code.title(),
        "status": code.status(),
        "detail": "the server has too many open connections; retry later",
        "request_id": uuid::Uuid::now_v7().to_string(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        crate::http::error::RETRY_AFTER_SECONDS,
        body.len()
    )
}
