//! The background service that runs the active health checks of whatever upstream groups
//! the current config snapshot has, so a reload needs no extra bookkeeping: a group that
//! is gone is no longer checked, a new one is checked from the next tick.

use crate::snapshot::SharedSnapshot;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::time::{Duration, Instant};

/// How often the driver looks for groups whose interval has passed.
const TICK: Duration = Duration::from_millis(25);

/// Background service running the health checks of the current snapshot's groups.
pub struct HealthCheckService {
    snapshot: SharedSnapshot,
}

impl HealthCheckService {
    /// Checks the groups of whatever snapshot `snapshot` holds at each tick.
    pub fn new(snapshot: SharedSnapshot) -> Self {
        Self { snapshot }
    }
}

#[async_trait]
impl BackgroundService for HealthCheckService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let snapshot = self.snapshot.load_full();
            for group in snapshot.upstreams.values() {
                if group.begin_check_if_due(now) {
                    let group = group.clone();
                    // Each pass runs on its own task so a slow peer cannot delay the
                    // other groups' checks.
                    tokio::spawn(async move { group.run_check().await });
                }
            }
        }
    }
}
