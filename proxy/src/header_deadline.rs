//! A deadline on reading each request's header, which Pingora does not have.
//!
//! Pingora bounds each *read* (60 s), not the header as a whole, so a slowloris client
//! that sends one byte a minute holds its connection (and a task) for as long as it
//! likes. [`HeaderDeadline`] wraps the proxy application and every accepted connection:
//! from the connection's start, and again from the first byte a client sends after a
//! response was written, the header must end (`\r\n\r\n`) within the deadline, or the
//! read fails with `TimedOut` and Pingora closes the connection (as nginx's
//! `client_header_timeout` and HAProxy's `timeout http-request` do). Idle time between
//! requests is the keep-alive timeout's business, not this one's; bodies are not timed.
//!
//! A new connection's first header is read ahead here, before Pingora allocates anything
//! for the connection: a client that connects and sends part of a header (or nothing)
//! costs a socket, a small task and the bytes it sent, not a Pingora session.
//!
//! The deadline stops for good once the connection is no longer HTTP/1 requests: the
//! HTTP/2 preface, or a `101 Switching Protocols` written back.

use crate::metrics::metrics;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::ALPN;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const HEADER_END: &[u8] = b"\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SWITCHING: &[u8] = b"HTTP/1.1 101";
/// The most of a first header read ahead before the connection goes to the inner app.
const READ_AHEAD_LIMIT: usize = 64 * 1024;

/// The L4 buffers of a client connection: no read buffer (Pingora's default is 64 KiB,
/// allocated at accept: 640 MiB for 10,000 idle clients). The HTTP/1 session reads into
/// its own header buffer and body chunks, so a buffer in front only saves syscalls for
/// small reads, which plaintext HTTP/1 does not make. The write side keeps Pingora's
/// one-MSS buffer.
pub fn client_buffers() -> pingora::listeners::L4BufferSettings {
    pingora::listeners::L4BufferSettings::default().read(CLIENT_READ_BUFFER)
}

/// See [`client_buffers`].
const CLIENT_READ_BUFFER: usize = 0;

/// A [`ServerApp`] whose connections must deliver each request header within `deadline`.
pub struct HeaderDeadline<A> {
    inner: Arc<A>,
    deadline: Duration,
}

impl<A> HeaderDeadline<A> {
    /// Wraps `inner`, e.g. Pingora's `HttpProxy`.
    pub fn new(inner: A, deadline: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            deadline,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        session: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A connection the inner app handed back for reuse is wrapped already.
        if session.as_any().is::<DeadlineStream>() {
            return self.inner.process_new(session, shutdown).await;
        }
        // Boxed so that its state (the stream, the select) is freed once the header has
        // come, instead of staying in this future for the connection's life.
        let stream = Box::pin(self.first_header(session, shutdown)).await?;
        let custom = self.inner.server_options().is_some_and(|o| o.force_custom)
            || matches!(stream.inner.selected_alpn_proto(), Some(ALPN::Custom(_)));
        if stream.phase == Phase::Off || custom {
            // HTTP/2 (the preface, or ALPN) and custom protocols: Pingora's own dispatch.
            return self.inner.process_new(Box::new(stream), shutdown).await;
        }
        self.serve_http1(Box::new(stream), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

impl<A: HttpServerApp + Send + Sync + 'static> HeaderDeadline<A> {
    /// Waits for the connection's first header (read ahead into the returned stream);
    /// `None` when it closed, failed, ran past the deadline or the server is stopping.
    async fn first_header(
        &self,
        session: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<DeadlineStream> {
        // Until the client's first header has arrived, the connection waits here, in a
        // small task and a buffer of what was sent: the inner app's per-connection state
        // (Pingora's session and request future, ~25 KiB) is then not held by clients that
        // connect and send little or nothing.
        let first_by = Instant::now() + self.deadline;
        let mut stream = DeadlineStream::new(session, self.deadline, first_by);
        let mut stopping = shutdown.clone();
        tokio::select! {
            // Closed, failed or past the deadline before a whole header: nothing to answer.
            read = stream.read_ahead() => read.ok()?,
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
        Some(stream)
    }

    /// Pingora's HTTP/1 connection loop (`ServerApp for HttpServerApp`), run here rather
    /// than through that blanket `process_new`: its future is laid out for the HTTP/2
    /// handshake and accept loop too, ~4 KiB held by every HTTP/1 connection for its life
    /// (heaptrack, bench/NOTES.md). Same settings: 60 s keep-alive unless stopping, the
    /// listener's request limit, the persistent settings carried to the next request.
    async fn serve_http1(&self, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE.as_secs()));
        session.set_keepalive_reuses_remaining(
            self.inner
                .server_options()
                .and_then(|o| o.keepalive_request_limit),
        );
        let mut result = self.inner.process_new_http(session, shutdown).await;
        while let Some((stream, persistent)) = result.map(|r| r.consume()) {
            let stream = next_request(stream, shutdown).await?;
            let mut session = ServerSession::new_http1(stream);
            if let Some(persistent) = persistent {
                persistent.apply_to_session(&mut session);
            }
            result = self.inner.process_new_http(session, shutdown).await;
        }
        None
    }
}

/// How long an HTTP/1 connection may stay idle between requests: Pingora's default, which
/// its own connection loop sets too.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Waits for the first byte of a kept-alive connection's next request (read ahead), so that
/// an idle connection holds only its stream: Pingora's request future (~10 KiB) and header
/// buffer (4 KiB) are allocated once the request is there, not for the whole wait. `None`
/// when the client closed, stayed idle past [`KEEPALIVE`] or the server is stopping (as
/// Pingora aborts its own idle reads then).
async fn next_request(stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
    if !stream.as_any().is::<DeadlineStream>() {
        return Some(stream);
    }
    let mut stream = stream.into_any().downcast::<DeadlineStream>().ok()?;
    let mut stopping = shutdown.clone();
    tokio::select! {
        // Biased: a request that has arrived is served, also while stopping.
        biased;
        arrived = stream.await_request(KEEPALIVE) => arrived.then_some(())?,
        _ = stopping.wait_for(|stop| *stop) => return None,
    }
    Some(stream)
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a header; `matched` bytes of `\r\n\r\n` seen at the end of the last read.
    Header { matched: usize },
    /// The header has arrived; the next header starts after the server has written.
    Body,
    /// A response was written: the deadline starts again with the client's next byte.
    Answered,
    /// Not HTTP/1 requests any more (HTTP/2, an upgraded connection): no deadline.
    Off,
    /// The deadline passed: every read fails.
    Expired,
}

/// An accepted connection with the header deadline applied to its reads.
pub struct DeadlineStream {
    inner: Stream,
    deadline: Duration,
    phase: Phase,
    /// Nothing was read yet (where the HTTP/2 preface would be).
    first_read: bool,
    timer: Pin<Box<Sleep>>,
    /// Bytes read ahead (the first header), served to the next reads before the socket.
    ahead: Vec<u8>,
    /// How much of `ahead` was served.
    served: usize,
}

impl std::fmt::Debug for DeadlineStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineStream")
            .field("phase", &self.phase)
            .field("inner", &self.inner)
            .finish()
    }
}

impl DeadlineStream {
    /// `inner`, whose first header must end by `first_by`, and each later one within
    /// `deadline` of its first byte.
    pub fn new(inner: Stream, deadline: Duration, first_by: Instant) -> Self {
        // HTTP/2 chosen in the TLS handshake: frames, not headers ending in a blank line.
        let h2 = inner.selected_alpn_proto() == Some(pingora::protocols::ALPN::H2);
        metrics().client_connections.inc();
        Self {
            inner,
            deadline,
            phase: if h2 {
                Phase::Off
            } else {
                Phase::Header { matched: 0 }
            },
            first_read: true,
            timer: Box::pin(tokio::time::sleep_until(first_by)),
            ahead: Vec::new(),
            served: 0,
        }
    }

    /// Reads until the current header has ended (or [`READ_AHEAD_LIMIT`] bytes: a header
    /// that long is the inner app's to refuse), keeping the bytes for the next reads.
    pub async fn read_ahead(&mut self) -> io::Result<()> {
        self.fill_ahead(|s| {
            !matches!(s.phase, Phase::Header { .. }) || s.ahead.len() >= READ_AHEAD_LIMIT
        })
        .await
    }

    /// Waits up to `idle` for the client's next byte after a response, reading it ahead;
    /// false when the client closed the connection, failed or stayed silent.
    async fn await_request(&mut self, idle: Duration) -> bool {
        // The header timer keeps the idle limit meanwhile (no header is being read; the
        // client's first byte restarts it): a timer of its own, registered and dropped on
        // every request, cost more.
        self.timer.as_mut().reset(Instant::now() + idle);
        std::future::poll_fn(|cx| {
            while self.unread().is_empty() {
                match self.poll_fill(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(false),
                    Poll::Pending if self.timer.as_mut().poll(cx).is_ready() => {
                        return Poll::Ready(false)
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(true)
        })
        .await
    }

    /// Reads from the socket into `ahead` until `done`; a closed socket is an error.
    async fn fill_ahead(&mut self, done: impl Fn(&Self) -> bool) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            while !done(self) {
                if let Err(e) = ready!(self.poll_fill(cx)) {
                    return Poll::Ready(Err(e));
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// One read from the socket into `ahead`; a closed socket is an error.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Not zeroed: the read fills what it reports.
        let mut chunk = [MaybeUninit::<u8>::uninit(); 1024];
        let mut buf = ReadBuf::uninit(&mut chunk);
        ready!(self.poll_socket(cx, &mut buf))?;
        if buf.filled().is_empty() {
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        self.ahead.extend_from_slice(buf.filled());
        Poll::Ready(Ok(()))
    }

    /// Reads from the socket, following the phases and applying the deadline.
    fn poll_socket(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.phase == Phase::Expired {
            return Poll::Ready(Err(header_timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.observe(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if matches!(self.phase, Phase::Header { .. })
                    && self.timer.as_mut().poll(cx).is_ready()
                {
                    self.phase = Phase::Expired;
                    metrics().header_timeouts.inc();
                    return Poll::Ready(Err(header_timed_out()));
                }
                Poll::Pending
            }
        }
    }

    /// `n` bytes of a response went out, starting with `start`: the next client byte
    /// starts a new header, unless the connection switched protocols.
    fn wrote(&mut self, n: usize, start: &[u8]) {
        if n > 0 && !matches!(self.phase, Phase::Off | Phase::Expired) {
            self.phase = if start.starts_with(SWITCHING) {
                Phase::Off
            } else {
                Phase::Answered
            };
        }
    }

    /// The read-ahead bytes not yet served.
    fn unread(&self) -> &[u8] {
        self.ahead.get(self.served..).unwrap_or_default()
    }

    /// Follows the bytes just read through the header phases.
    fn observe(&mut self, read: &[u8]) {
        if read.is_empty() {
            return;
        }
        match self.phase {
            Phase::Answered => {
                self.timer.as_mut().reset(Instant::now() + self.deadline);
                self.phase = Phase::Header { matched: 0 };
                self.scan(read);
            }
            Phase::Header { .. } if self.first_read && read.starts_with(H2_PREFACE) => {
                self.phase = Phase::Off;
            }
            Phase::Header { .. } => self.scan(read),
            Phase::Body | Phase::Off | Phase::Expired => {}
        }
        self.first_read = false;
    }

    /// Looks for the end of the header, which may straddle reads.
    fn scan(&mut self, read: &[u8]) {
        let Phase::Header { mut matched } = self.phase else {
            return;
        };
        for &b in read {
            matched = if b == HEADER_END[matched] {
                matched + 1
            } else if b == HEADER_END[0] {
                1
            } else {
                0
            };
            if matched == HEADER_END.len() {
                self.phase = Phase::Body;
                return;
            }
        }
        self.phase = Phase::Header { matched };
    }
}

fn header_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "request header not received within server.client_header_timeout_ms",
    )
}

impl Drop for DeadlineStream {
    fn drop(&mut self) {
        metrics().client_connections.dec();
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let unread = this.unread();
        if unread.is_empty() {
            return this.poll_socket(cx, buf);
        }
        let n = unread.len().min(buf.remaining());
        buf.put_slice(&unread[..n]);
        this.served += n;
        if this.served == this.ahead.len() {
            // Served in full: the buffer is not kept for the life of the connection.
            this.ahead = Vec::new();
            this.served = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.wrote(n, buf);
        }
        written
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
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            this.wrote(n, first);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    /// Peeks through the read-ahead bytes, reading more into them when needed.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let want = buf.len();
        self.fill_ahead(|s| s.unread().len() >= want).await?;
        buf.copy_from_slice(&self.unread()[..want]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
