//! One accept loop for plain HTTP and TLS, and what it bounds per connection.
//!
//! - At most [`Limits::max_open`] connections are open at once (it follows the process's
//!   file-descriptor limit, raised to its hard maximum at start): past it, new
//!   connections wait in the kernel's backlog instead of failing at `accept`.
//! - One address (an IPv4 address, an IPv6 /64) may hold at most
//!   [`Limits::per_address`] connections that have not authenticated yet, TLS handshakes
//!   included; past it its new connections are closed at once, so idle sockets from one
//!   place lock nobody else out.
//! - A TLS handshake has [`Limits::handshake_timeout`]; at most [`MAX_HANDSHAKES`] run at
//!   once, each in its own task, so a client that says nothing holds up no one.
//! - A connection must authenticate within [`Limits::unauthenticated_timeout`]: a
//!   request on it that [`super::guard`] lets in with a credential marks it
//!   ([`Conn::pass`]); until then its reads fail once the deadline passes.
//! - A write that makes no progress for [`Limits::write_timeout`] fails: a reader that
//!   stopped reading (an MJPEG tab in the background of a dead link) is hung up on
//!   instead of holding its seat for ever.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// TLS handshakes in flight at most; connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 256;

/// Unauthenticated connections one address may hold (a browser opens about six).
pub const PER_ADDRESS: usize = 32;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of not-yet-sent data the kernel may hold on a socket before it stops
/// taking more (`TCP_NOTSENT_LOWAT`): frames wait in the server, where newer ones can
/// replace them, not in a kernel buffer.
pub const NOTSENT_LOWAT: u32 = 16 * 1024;

/// What the accept loop bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_open: usize,
    /// Unauthenticated connections (TLS handshakes included) per address.
    pub per_address: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long a connection may stay open before a request on it authenticates.
    pub unauthenticated_timeout: Duration,
    /// How long a write may make no progress before the connection is dropped.
    pub write_timeout: Duration,
}

/// Sets `TCP_NODELAY` (no Nagle delay on small messages such as acks and input
/// replies) and [`NOTSENT_LOWAT`] on an accepted socket; failures only cost latency.
fn tune(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        tracing::debug!(cause = %e, "cannot set TCP_NOTSENT_LOWAT");
    }
}

/// Raises this process's soft file-descriptor limit to its hard limit; returns the
/// limit now in force (`None` if it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(cause = %e, "cannot raise the file-descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

impl Limits {
    /// The limits for `config` in a process allowed `fds` open files (`None`:
    /// unknown), keeping room for the X connections, shared memory and logs.
    pub fn new(fds: Option<u64>, config: &crate::Config) -> Limits {
        let fds = fds.unwrap_or(1024);
        Limits {
            max_open: (fds.saturating_sub(128)).clamp(64, 16_384) as usize,
            per_address: PER_ADDRESS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            unauthenticated_timeout: config.unauthenticated_timeout,
            write_timeout: config.write_timeout,
        }
    }
}

/// The key per-address limits count under: the IPv4 address, the IPv6 /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

/// Unauthenticated connections per address. An entry exists only while its address
/// has one, so the table is never larger than the open connections.
#[derive(Default)]
struct Pending(Mutex<HashMap<IpAddr, usize>>);

impl Pending {
    fn claim(self: &Arc<Self>, peer: IpAddr, max: usize) -> Option<Gate> {
        let key = address_key(peer);
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = table.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Gate {
            passed: AtomicBool::new(false),
            key,
            pending: self.clone(),
        })
    }

    fn release(&self, key: IpAddr) {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = table.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                table.remove(&key);
            }
        }
    }
}

/// One connection's standing: counted as unauthenticated until it passes.
struct Gate {
    passed: AtomicBool,
    key: IpAddr,
    pending: Arc<Pending>,
}

impl Gate {
    fn pass(&self) {
        if !self.passed.swap(true, Ordering::SeqCst) {
            self.pending.release(self.key);
        }
    }

    fn passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if !self.passed() {
            self.pending.release(self.key);
        }
    }
}

/// Accepts connections (and finishes TLS handshakes) and hands them to axum.
pub struct Accepting {
    ready: mpsc::Receiver<(Connection, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Logs a refusal at most once a second (a flood must not flood the log too).
struct Quiet(Option<Instant>);

impl Quiet {
    fn warn(&mut self, peer: SocketAddr, what: &str) {
        if self.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.0 = Some(Instant::now());
            tracing::warn!(%peer, "{what}; closing (logged once a second)");
        }
    }
}

impl Accepting {
    /// Starts accepting on `listener`, with TLS when `tls` is given.
    pub fn start(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: Limits,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, tls, limits, tx));
        Ok(Accepting { ready, local, task })
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    tx: mpsc::Sender<(Connection, SocketAddr)>,
) {
    let open = Arc::new(Semaphore::new(limits.max_open));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let pending = Arc::new(Pending::default());
    let mut quiet = Quiet(None);
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, or the peer left before accept: pause, retry.
                tracing::debug!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tune(&tcp);
        let Some(gate) = pending.claim(peer.ip(), limits.per_address) else {
            quiet.warn(
                peer,
                "too many unauthenticated connections from this address",
            );
            continue;
        };
        let connection = move |stream| Connection {
            stream,
            gate: Arc::new(gate),
            deadline: Box::pin(tokio::time::sleep(limits.unauthenticated_timeout)),
            write_timeout: limits.write_timeout,
            stalled: None,
            _open: permit,
        };
        match &tls {
            None => {
                if tx
                    .send((connection(Stream::Plain(tcp)), peer))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(acceptor) => {
                let Ok(slot) = handshakes.clone().try_acquire_owned() else {
                    quiet.warn(peer, "too many TLS handshakes at once");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let done = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
                    match done.await {
                        Ok(Ok(stream)) => {
                            drop(slot);
                            let _ = tx
                                .send((connection(Stream::Tls(Box::new(stream))), peer))
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, cause = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

impl Listener for Accepting {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A plain or TLS stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection, with its limits.
pub struct Connection {
    stream: Stream,
    gate: Arc<Gate>,
    deadline: Pin<Box<Sleep>>,
    write_timeout: Duration,
    /// Since when writes have made no progress.
    stalled: Option<Pin<Box<Sleep>>>,
    _open: OwnedSemaphorePermit,
}

/// What a handler knows about its connection: the peer, and the way to mark the
/// connection authenticated.
#[derive(Clone)]
pub struct Conn {
    /// The client's address.
    pub peer: SocketAddr,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("peer", &self.peer).finish()
    }
}

impl Conn {
    /// Marks the connection authenticated: it may now live as long as it likes, and no
    /// longer counts against its address.
    pub fn pass(&self) {
        self.gate.pass();
    }
}

impl Connected<IncomingStream<'_, Accepting>> for Conn {
    fn connect_info(stream: IncomingStream<'_, Accepting>) -> Self {
        Conn {
            peer: *stream.remote_addr(),
            gate: stream.io().gate.clone(),
        }
    }
}

macro_rules! on_stream {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.stream {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl Connection {
    /// Turns a pending write into an error once writes stalled for the write timeout.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stalled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.gate.passed() && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection did not authenticate in time",
            )));
        }
        on_stream!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = on_stream!(self, s => s.poll_write(cx, buf));
        self.watch_write(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = on_stream!(self, s => s.poll_flush(cx));
        self.watch_write(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = on_stream!(self, s => s.poll_write_vectored(cx, bufs));
        self.watch_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_connections_count_per_address_until_they_pass() {
        let pending = Arc::new(Pending::default());
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        let first = pending.claim(a, 2).expect("one");
        let second = pending.claim(a, 2).expect("two");
        assert!(pending.claim(a, 2).is_none(), "a third waits");
        let _v6 = pending.claim(b, 1).expect("another address");
        assert!(
            pending
                .claim("2001:db8::2".parse().expect("ip"), 1)
                .is_none(),
            "the same /64"
        );
        first.pass();
        let third = pending.claim(a, 2).expect("a passed one no longer counts");
        drop(first);
        drop(second);
        drop(third);
        assert!(!pending.0.lock().expect("lock").contains_key(&a), "emptied");
    }
}
