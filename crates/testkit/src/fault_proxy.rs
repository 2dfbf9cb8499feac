//! A TCP proxy a test puts between the service and a real dependency (Postgres, Redis) to
//! inject network faults for real: [`FaultProxy::cut`] drops every open connection and
//! swallows new ones without a byte (a partition: the peer waits for its own timeout),
//! [`FaultProxy::refuse`] drops them at once (the dependency's host is up, its port is
//! not), [`FaultProxy::slow`] delays every chunk, [`FaultProxy::restore`] forwards again.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does with the bytes it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Forward,
    /// Forwards, waiting this long before each chunk.
    Slow(Duration),
    /// Accepts new connections and never answers on them (a network partition).
    Blackhole,
    /// Accepts new connections and closes them at once.
    Refuse,
}

/// The mode and a generation bumped by every change that must drop open connections.
type State = (Mode, u64);

/// A running proxy; stops (and drops every connection) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fault proxy binds a loopback port");
        let addr = listener.local_addr().expect("fault proxy address");
        let (state, _) = watch::channel((Mode::Forward, 0));
        let accept = tokio::spawn(accept_loop(listener, target, state.clone()));
        Self {
            addr,
            state,
            accept,
        }
    }

    /// A proxy to the host and port of `url` (`scheme://[user[:pass]@]host[:port]/…`; the
    /// port defaults to 5432 for Postgres and 6379 for Redis), and `url` rewritten to go
    /// through it.
    ///
    /// # Panics
    /// When the URL names no resolvable host.
    pub async fn for_url(url: &str) -> (Self, String) {
        let (before, host, port, after) = split_authority(url);
        let target = tokio::net::lookup_host((host, port))
            .await
            .ok()
            .and_then(|mut a| a.find(SocketAddr::is_ipv4))
            .unwrap_or_else(|| panic!("fault proxy: cannot resolve {host}:{port}"));
        let proxy = Self::start(target).await;
        let rewritten = format!("{before}{}{after}", proxy.addr);
        (proxy, rewritten)
    }

    /// The address to connect to instead of the target.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection; new ones are accepted and never answered.
    pub fn cut(&self) {
        self.set(Mode::Blackhole);
    }

    /// Drops every open connection; new ones are closed as soon as they are accepted.
    pub fn refuse(&self) {
        self.set(Mode::Refuse);
    }

    /// Forwards again (connections swallowed while cut are closed).
    pub fn restore(&self) {
        self.set(Mode::Forward);
    }

    /// Keeps connections open but delays every chunk, both ways, by `delay`.
    pub fn slow(&self, delay: Duration) {
        self.state.send_modify(|s| s.0 = Mode::Slow(delay));
    }

    fn set(&self, mode: Mode) {
        self.state.send_modify(|s| *s = (mode, s.1 + 1));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task watches the generation: a bump ends them all.
        self.state.send_modify(|s| s.1 += 1);
    }
}

/// `postgres://u:p@host:5432/db?x` → (`postgres://u:p@`, `host`, 5432, `/db?x`).
fn split_authority(url: &str) -> (&str, &str, u16, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let default_port = if url.starts_with("redis") { 6379 } else { 5432 };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(default_port)),
        None => (host_port, default_port),
    };
    let before = &url[..scheme_end + host_start];
    (before, host, port, &rest[auth_end..])
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: watch::Sender<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let watch = state.subscribe();
        tokio::spawn(async move {
            let (mode, generation) = *watch.borrow();
            match mode {
                Mode::Refuse => drop(client),
                Mode::Blackhole => hold_until_changed(client, watch, generation).await,
                Mode::Forward | Mode::Slow(_) => {
                    if let Ok(upstream) = TcpStream::connect(target).await {
                        forward(client, upstream, watch, generation).await;
                    }
                }
            }
        });
    }
}

/// Keeps a swallowed connection open, reading nothing, until the next change of mode.
async fn hold_until_changed(client: TcpStream, mut watch: watch::Receiver<State>, generation: u64) {
    let _ = watch.wait_for(|s| s.1 != generation).await;
    drop(client);
}

async fn forward(
    client: TcpStream,
    upstream: TcpStream,
    mut watch: watch::Receiver<State>,
    generation: u64,
) {
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let pipes = futures_join(pipe(cr, uw, watch.clone()), pipe(ur, cw, watch.clone()));
    tokio::select! {
        _ = pipes => {}
        // Both sockets are dropped here: the peers see the connection close.
        _ = watch.wait_for(|s| s.1 != generation) => {}
    }
}

async fn futures_join(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    tokio::join!(a, b);
}

/// Copies one direction, chunk by chunk, delaying each chunk while the mode is `Slow`.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, watch: watch::Receiver<State>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = match watch.borrow().0 {
            Mode::Slow(d) => Some(d),
            _ => None,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn rewrites_the_authority_only() {
        assert_eq!(
            split_authority("postgres://u:p@127.0.0.1:5433/db?sslmode=disable"),
            ("postgres://u:p@", "127.0.0.1", 5433, "/db?sslmode=disable")
        );
        assert_eq!(
            split_authority("redis://127.0.0.1:6380"),
            ("redis://", "127.0.0.1", 6380, "")
        );
        assert_eq!(
            split_authority("postgres://localhost/x"),
            ("postgres://", "localhost", 5432, "/x")
        );
    }
}
