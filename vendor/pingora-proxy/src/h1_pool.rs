// sluice patch: an HTTP/1 upstream connection pool without a task per idle connection.
//
// pingora-core's pool spawns a task for every connection it takes back (to notice a server
// closing it) and, on reuse, wakes that task and waits for it to hand the connection over,
// then asks the kernel for the fd's peer address (`matches_fd`): a spawn, two task
// wake-ups and a `getpeername` on every proxied request. This pool keeps an idle
// connection as a plain value and checks it when it is taken: past its idle timeout, or
// readable (the server closed it or sent something unasked), it is dropped and the next
// one is tried. A connection never leaves the pool's hands while idle and is found by its
// peer's own key, so the peer-address check has nothing to catch. One task per pool sweeps
// the idle connections every second, so one a server closed while no request came is
// closed here too, not left in CLOSE_WAIT.

use pingora_core::connectors::{ConnectorOptions, TransportConnector};
use pingora_core::protocols::http::v1::client::HttpSession;
use pingora_core::protocols::Stream;
use pingora_core::upstreams::peer::Peer;
use pingora_error::Result;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::io::AsyncReadExt;

/// The default number of idle connections kept per upstream peer (pingora-core's
/// `DEFAULT_POOL_SIZE`).
const DEFAULT_PER_PEER: usize = 128;

/// How often idle connections are checked for a close by their server.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type IdleMap = Mutex<HashMap<u64, VecDeque<Idle>>>;

struct Idle {
    stream: Stream,
    since: Instant,
    timeout: Option<Duration>,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        self.timeout
            .is_some_and(|t| now.saturating_duration_since(self.since) >= t)
    }
}

/// HTTP/1 connections to upstream peers: new ones made by pingora-core's transport
/// connector, idle ones kept here between requests.
pub(crate) struct H1Pool {
    transport: TransportConnector,
    idle: Arc<IdleMap>,
    per_peer: usize,
    unexpected_data: Arc<AtomicU64>,
    sweeper: Once,
}

impl H1Pool {
    /// `unexpected_data` counts idle connections that spoke unasked; it is shared with
    /// pingora-core's connector, so the proxy reports one figure.
    pub(crate) fn new(options: Option<ConnectorOptions>, unexpected_data: Arc<AtomicU64>) -> Self {
        let per_peer = options
            .as_ref()
            .map_or(DEFAULT_PER_PEER, |o| o.keepalive_pool_size);
        H1Pool {
            transport: TransportConnector::new(options),
            idle: Arc::new(Mutex::new(HashMap::new())),
            per_peer,
            unexpected_data,
            sweeper: Once::new(),
        }
    }

    /// An HTTP/1 session to `peer`, and whether its connection was reused.
    pub(crate) async fn get_http_session<P: Peer + Send + Sync + 'static>(
        &self,
        peer: &P,
    ) -> Result<(HttpSession, bool)> {
        if let Some(stream) = self.take_idle(peer.reuse_hash()) {
            return Ok((HttpSession::new_with_options(stream, peer), true));
        }
        let stream = self.transport.new_stream(peer).await?;
        Ok((HttpSession::new_with_options(stream, peer), false))
    }

    /// Takes `session`'s connection back if the exchange left it reusable.
    pub(crate) async fn release_http_session<P: Peer + Send + Sync + 'static>(
        &self,
        mut session: HttpSession,
        peer: &P,
        idle_timeout: Option<Duration>,
    ) {
        session.respect_keepalive();
        let Some(mut stream) = session.reuse().await else {
            return;
        };
        if !still_idle(&mut stream, &self.unexpected_data) {
            return;
        }
        // Started here, inside the runtime, and only by a pool that keeps connections.
        self.sweeper.call_once(|| {
            tokio::spawn(sweep(
                Arc::downgrade(&self.idle),
                self.unexpected_data.clone(),
            ));
        });
        let now = Instant::now();
        let idle = Idle {
            stream,
            since: now,
            timeout: idle_timeout,
        };
        let Ok(mut map) = self.idle.lock() else {
            return;
        };
        let queue = map.entry(peer.reuse_hash()).or_default();
        // The oldest are at the front; the ones past their timeout go when the next arrives.
        while queue.front().is_some_and(|i| i.expired(now)) {
            queue.pop_front();
        }
        if queue.len() >= self.per_peer {
            queue.pop_front();
        }
        queue.push_back(idle);
    }

    fn take_idle(&self, key: u64) -> Option<Stream> {
        let now = Instant::now();
        loop {
            // The most recently used first: its socket and buffers are warm, and the
            // old ones reach their idle timeout and go.
            let mut idle = {
                let mut map = self.idle.lock().ok()?;
                map.get_mut(&key)?.pop_back()?
            };
            if !idle.expired(now) && still_idle(&mut idle.stream, &self.unexpected_data) {
                return Some(idle.stream);
            }
        }
    }
}

/// Whether an idle connection is still open and silent: a server never speaks first on an
/// idle HTTP/1 connection, so anything readable (data, EOF, an error) ends it.
fn still_idle(stream: &mut Stream, unexpected_data: &AtomicU64) -> bool {
    let mut buf = [0; 1];
    // `unconstrained`: tokio's cooperative budget could otherwise make a ready read look
    // pending.
    match tokio::task::unconstrained(stream.read(&mut buf[..])).now_or_never() {
        None => true,
        Some(Ok(n)) if n > 0 => {
            unexpected_data.fetch_add(1, Ordering::Relaxed);
            false
        }
        Some(_) => false,
    }
}

/// Drops the idle connections that are past their timeout or no longer silent, every
/// [`SWEEP_EVERY`], until the pool is gone.
async fn sweep(idle: Weak<IdleMap>, unexpected_data: Arc<AtomicU64>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(idle) = idle.upgrade() else {
            return;
        };
        let now = Instant::now();
        let Ok(mut map) = idle.lock() else {
            return;
        };
        map.retain(|_, queue| {
            queue.retain_mut(|i| !i.expired(now) && still_idle(&mut i.stream, &unexpected_data));
            !queue.is_empty()
        });
    }
}
