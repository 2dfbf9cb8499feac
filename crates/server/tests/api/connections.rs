//! Slow and oversized clients, with real sockets (docs/reliability.md): a head that never
//! ends is cut off after the header-read timeout while fresh requests are served; a huge
//! head gets 431; an idle kept-alive connection is closed after the keep-alive timeout
//! (and not by the head timer); above the connection cap a new connection gets a 503 and
//! is closed while the open ones keep working.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::common::{Backend, TestApp, spawn_app_with};

const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";

/// Reads one HTTP/1 response off `s`: its status, or `None` when the connection closed
/// (or was reset) before a complete answer.
async fn read_response(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((status, head))
}

/// True once the server has closed `s` (end of stream or reset), waiting at most `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, s.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// True while `s` is open: no end of stream, no reset, nothing to read.
fn still_open(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

async fn slow_heads_are_cut_off_while_fresh_requests_are_served(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("HEADER_READ_TIMEOUT_SECONDS", "2"),
            // Long, so only the head timer can close them.
            ("KEEP_ALIVE_TIMEOUT_SECONDS", "600"),
        ],
    )
    .await;
    let mut slow = Vec::with_capacity(300);
    for _ in 0..300 {
        let mut s = connect(&app).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await
            .expect("partial head");
        slow.push(s);
    }
    let opened = Instant::now();
    // A fresh client is served while the 300 hold their sockets.
    let res = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("fresh request");
    assert_eq!(res.status(), 200);
    assert!(
        opened.elapsed() < Duration::from_secs(2),
        "answered before any slow head timed out"
    );
    let open_now = slow.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        open_now, 300,
        "the slow sockets were open while it was served"
    );
    // Each is closed after the header-read timeout (2 s), none is left hanging.
    let mut closed = 0;
    for s in &mut slow {
        let left = Duration::from_secs(12).saturating_sub(opened.elapsed());
        if closed_within(s, left).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 300,
        "slow sockets closed by the header-read timeout"
    );
    assert!(
        opened.elapsed() >= Duration::from_millis(1500),
        "closed by the head timer, not at once"
    );
    let res = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("after");
    assert_eq!(res.status(), 200);
}

async fn a_huge_head_gets_431(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    // 256 KiB of one header (the default limit is 32 KiB).
    let mut s = connect(&app).await;
    let mut req = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 256 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    // The server may answer (and stop reading) before all of it is written.
    let _ = s.write_all(&req).await;
    let (status, _) = read_response(&mut s).await.expect("an answer, not a reset");
    assert_eq!(status, 431);
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    // Just under the limit is served.
    let mut s = connect(&app).await;
    let mut req = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 30 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    s.write_all(&req).await.expect("write");
    assert_eq!(read_response(&mut s).await.map(|r| r.0), Some(200));
}

async fn idle_keep_alive_connections_are_closed(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("KEEP_ALIVE_TIMEOUT_SECONDS", "3"),
        ],
    )
    .await;
    let mut s = connect(&app).await;
    s.write_all(REQUEST).await.expect("request");
    assert_eq!(read_response(&mut s).await.map(|r| r.0), Some(200));
    // Idle for longer than the head timeout: still open (that clock runs only once a
    // head has begun), and a second request on it is served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(still_open(&s), "closed by the head timer while idle");
    s.write_all(REQUEST).await.expect("second request");
    assert_eq!(read_response(&mut s).await.map(|r| r.0), Some(200));
    // Then idle past the keep-alive timeout: closed.
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)).await,
        "idle connection never closed"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(2500),
        "closed by the keep-alive timer ({:?})",
        idle.elapsed()
    );
    // A connection that never sends anything is idle too.
    let mut quiet = connect(&app).await;
    assert!(closed_within(&mut quiet, Duration::from_secs(10)).await);
}

async fn above_the_connection_cap_new_connections_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_CLIENT_CONNECTIONS", "4")]).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut s = connect(&app).await;
        s.write_all(REQUEST).await.expect("request");
        assert_eq!(read_response(&mut s).await.map(|r| r.0), Some(200));
        open.push(s);
    }
    // The fifth: a 503 problem with Retry-After, then closed.
    let mut fifth = connect(&app).await;
    let _ = fifth.write_all(REQUEST).await;
    let (status, head) = read_response(&mut fifth).await.expect("an answer");
    assert_eq!(status, 503);
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("retry-after:"), "{head}");
    assert!(closed_within(&mut fifth, Duration::from_secs(5)).await);
    // The open ones still work.
    for s in &mut open {
        s.write_all(REQUEST).await.expect("request");
        assert_eq!(read_response(s).await.map(|r| r.0), Some(200));
    }
    // One closes: a new connection is taken again.
    drop(open.pop());
    let started = Instant::now();
    loop {
        let mut s = connect(&app).await;
        s.write_all(REQUEST).await.expect("request");
        if read_response(&mut s).await.map(|r| r.0) == Some(200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The limits are the server's, not the database's: one engine is enough for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads() {
    slow_heads_are_cut_off_while_fresh_requests_are_served(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_head() {
    a_huge_head_gets_431(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive() {
    idle_keep_alive_connections_are_closed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap() {
    above_the_connection_cap_new_connections_are_refused(Backend::Sqlite).await;
}
