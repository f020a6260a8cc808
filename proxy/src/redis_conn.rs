//! The process-wide Redis connection (one server, or a Redis Cluster): connected from a background service (after Pingora
//! has daemonized), every call bounded by the configured timeout, and a short "down"
//! window after a failure so requests go straight to the fallback instead of each paying
//! the timeout while Redis is away. Requests that arrive while the first connection is
//! still being made wait for it (briefly): the listener opens before Redis answers, and
//! refusing a key or limiting from the local bucket in that moment would be wrong.

use arc_swap::ArcSwapOption;
pub use sluice_redis::Conn;
use sluice_redis::Target;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a failure, how long Redis is not asked again.
const DOWN_FOR: Duration = Duration::from_millis(500);
/// The first connection's timeout, and so the longest a request waits for it.
const FIRST_CONNECT: Duration = Duration::from_millis(500);

/// Why a Redis call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Not connected yet, or inside the down window after a failure.
    #[error("redis unavailable")]
    Unavailable,
    /// No answer within the timeout.
    #[error("redis timed out")]
    Timeout,
    /// Redis answered with an error, or the connection broke.
    #[error("redis: {0}")]
    Failed(#[from] redis::RedisError),
}

/// A shared, lazily connected Redis connection.
pub struct RedisConn {
    target: Target,
    conn: ArcSwapOption<Conn>,
    /// True once the first connection attempt has ended, either way.
    first_attempt_done: tokio::sync::watch::Sender<bool>,
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis counts as down.
    down_until_ms: AtomicU64,
}

impl RedisConn {
    /// A handle for `url`; nothing connects until [`RedisConn::connect`].
    pub fn new(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        Self::with_target(Target::Single(redis::Client::open(url)?))
    }

    /// A handle for the cluster seeded by `nodes` (`redis://host:port` each).
    pub fn cluster(nodes: &[String]) -> Result<Arc<Self>, redis::RedisError> {
        Self::with_target(Target::cluster(nodes, FIRST_CONNECT)?)
    }

    fn with_target(target: Target) -> Result<Arc<Self>, redis::RedisError> {
        Ok(Arc::new(Self {
            target,
            conn: ArcSwapOption::empty(),
            first_attempt_done: tokio::sync::watch::Sender::new(false),
            epoch: Instant::now(),
            down_until_ms: AtomicU64::new(0),
        }))
    }

    /// A client for pub/sub: the server, or the `attempt`-th seed node of a cluster in
    /// turn (a resubscription after a failure tries the next).
    pub fn pubsub_client(&self, attempt: usize) -> Option<redis::Client> {
        self.target.pubsub_client(attempt)
    }

    /// Whether this is a Redis Cluster (its keys must share a slot to be used together).
    pub fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    /// Connects (the manager then reconnects on its own); retried by the caller.
    pub async fn connect(&self) -> Result<(), redis::RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(FIRST_CONNECT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let conn = self.target.connect(config).await;
        if let Ok(conn) = &conn {
            self.conn.store(Some(Arc::new(conn.clone())));
        }
        self.first_attempt_done.send_replace(true);
        conn.map(|_| ())
    }

    /// Waits (at most [`FIRST_CONNECT`]) for the first connection attempt to end.
    async fn first_attempt(&self) {
        let mut done = self.first_attempt_done.subscribe();
        let _ = tokio::time::timeout(FIRST_CONNECT, done.wait_for(|done| *done)).await;
    }

    /// Whether calls are currently skipped because Redis failed moments ago (or is not
    /// connected yet).
    pub fn is_down(&self) -> bool {
        self.conn.load().is_none() || self.now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn mark_down(&self) {
        self.down_until_ms.store(
            self.now_ms() + u64::try_from(DOWN_FOR.as_millis()).unwrap_or(500),
            Ordering::Relaxed,
        );
    }

    /// Runs `op` on the connection within `timeout`; failures open the down window.
    pub async fn call<T, F, Fut>(&self, timeout: Duration, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        if self.conn.load().is_none() && !*self.first_attempt_done.borrow() {
            self.first_attempt().await;
        }
        if self.is_down() {
            return Err(RedisError::Unavailable);
        }
        let Some(conn) = self.conn.load_full() else {
            return Err(RedisError::Unavailable);
        };
        match tokio::time::timeout(timeout, op(Conn::clone(&conn))).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                {
                    self.mark_down();
                }
                Err(RedisError::Failed(e))
            }
            Err(_) => {
                self.mark_down();
                Err(RedisError::Timeout)
            }
        }
    }
}
