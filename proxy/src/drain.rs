//! Graceful shutdown that ends as soon as the work does.
//!
//! On SIGTERM Pingora stops accepting and then sleeps the whole grace period before it
//! exits, even when nothing is in flight. [`DrainService`] counts requests in flight and
//! exits the process (status 0) the moment the count reaches zero after shutdown began
//! and every [`ExitHold`] is released (the Kafka producer holds one until the events of
//! the last requests are flushed) — or lets Pingora's grace period run out first,
//! whichever comes sooner.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tracing::info;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static EXIT_HOLDS: AtomicUsize = AtomicUsize::new(0);

/// Longest the drain waits for holders after the last request, so a stuck flush cannot
/// keep the process alive.
const HOLD_PATIENCE: Duration = Duration::from_secs(15);

/// One more on `counter` while alive.
#[derive(Debug)]
struct Counted(&'static AtomicUsize);

impl Counted {
    fn new(counter: &'static AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps the process from exiting on drain while alive: for work that must finish after
/// the last request (flushing its events).
#[derive(Debug)]
pub struct ExitHold {
    _held: Counted,
}

impl ExitHold {
    /// Holds the exit until dropped.
    pub fn take() -> Self {
        Self {
            _held: Counted::new(&EXIT_HOLDS),
        }
    }
}

/// Held by each request context; counts the request as in flight while alive.
#[derive(Debug)]
pub struct InFlight {
    _held: Counted,
}

impl InFlight {
    /// Counts one more request in flight.
    pub fn enter() -> Self {
        Self {
            _held: Counted::new(&IN_FLIGHT),
        }
    }

    /// Requests in flight now.
    pub fn count() -> usize {
        IN_FLIGHT.load(Ordering::Acquire)
    }
}

/// Exits the process once shutdown has begun and no request is in flight.
pub struct DrainService;

#[async_trait]
impl BackgroundService for DrainService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.changed().await.is_err() {
            return;
        }
        // Requests already read but not yet counted get a moment to register.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while InFlight::count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let waiting = std::time::Instant::now();
        while EXIT_HOLDS.load(Ordering::Acquire) > 0 && waiting.elapsed() < HOLD_PATIENCE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        info!("graceful shutdown: no request in flight; exiting");
        std::process::exit(0);
    }
}
