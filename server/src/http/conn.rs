//! Connections that never authenticate are closed soon.
//!
//! [`Gated`] wraps any listener; each connection carries a flag that
//! [`super::guard`] sets once a request on it presented a valid token (or auth is off).
//! Until then the connection may live only [`Config::unauthenticated_timeout`]; a
//! client that connects and sends nothing, or keeps getting 401, is hung up on.
//!
//! [`Config::unauthenticated_timeout`]: crate::Config::unauthenticated_timeout

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A listener whose connections must authenticate within `timeout`.
pub struct Gated<L> {
    inner: L,
    timeout: Duration,
}

/// Bytes of not-yet-sent data the kernel may hold on a socket before it stops
/// taking more (`TCP_NOTSENT_LOWAT`): frames wait in the server, where newer ones can
/// replace them, not in a kernel buffer.
pub const NOTSENT_LOWAT: u32 = 16 * 1024;

/// Sets `TCP_NODELAY` (no Nagle delay on small messages such as acks and input
/// replies) and [`NOTSENT_LOWAT`] on an accepted socket; failures only cost latency.
pub fn tune(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        tracing::debug!(cause = %e, "cannot set TCP_NOTSENT_LOWAT");
    }
}

impl<L> Gated<L> {
    /// Wraps `inner`.
    pub fn new(inner: L, timeout: Duration) -> Self {
        Gated { inner, timeout }
    }
}

impl<L> Listener for Gated<L>
where
    L: Listener<Addr = SocketAddr>,
{
    type Io = GatedIo<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let io = GatedIo {
            inner: io,
            passed: Arc::new(AtomicBool::new(false)),
            deadline: Box::pin(tokio::time::sleep(self.timeout)),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails its reads once its deadline passes unauthenticated.
pub struct GatedIo<T> {
    inner: T,
    passed: Arc<AtomicBool>,
    deadline: Pin<Box<Sleep>>,
}

/// What a handler knows about its connection: the peer, and the flag to set once a
/// request on it authenticated.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The client's address.
    pub peer: SocketAddr,
    passed: Arc<AtomicBool>,
}

impl Conn {
    /// Marks the connection authenticated: it may now live as long as it likes.
    pub fn pass(&self) {
        self.passed.store(true, Ordering::Relaxed);
    }
}

impl<L> Connected<IncomingStream<'_, Gated<L>>> for Conn
where
    L: Listener<Addr = SocketAddr>,
{
    fn connect_info(stream: IncomingStream<'_, Gated<L>>) -> Self {
        Conn {
            peer: *stream.remote_addr(),
            passed: stream.io().passed.clone(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GatedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.passed.load(Ordering::Relaxed) && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection did not authenticate in time",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GatedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
