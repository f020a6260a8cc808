//! Hot reload: re-read the config file, validate it completely, build the new snapshot
//! (health-checking new upstream groups first), and only then swap it in atomically.
//!
//! Triggered by SIGHUP ([`ReloadSignalService`]) or `POST /admin/reload`. A request keeps
//! the snapshot it started with; an invalid file leaves the old snapshot serving.

use crate::access_log::AccessLog;
use crate::config::{self, Config, ConfigErrors};
use crate::metrics::metrics;
use crate::snapshot::{SharedSnapshot, Snapshot};
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tracing::{error, info};

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file has errors; nothing changed.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The file changes settings that only a restart or graceful upgrade can apply.
    #[error("{} cannot change without a restart; use the graceful upgrade (see README, \"Change the config\")", .0.join(", "))]
    RestartRequired(Vec<&'static str>),
    /// Building the new upstream groups failed.
    #[error("building upstream groups: {0}")]
    Build(String),
}

/// The outcome of the last reload attempt, for `GET /admin/config`.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    /// Seconds since the Unix epoch.
    pub at_unix_s: u64,
    /// `ok` or `error`.
    pub result: &'static str,
    /// The error, when there was one.
    pub message: Option<String>,
}

/// Performs reloads, one at a time.
pub struct Reloader {
    path: PathBuf,
    snapshot: SharedSnapshot,
    /// Serializes reloads: two at once could each build from the same old snapshot.
    lock: tokio::sync::Mutex<()>,
    last: Mutex<Option<LastReload>>,
}

impl Reloader {
    /// Reloads `path` into `snapshot`.
    pub fn new(path: PathBuf, snapshot: SharedSnapshot) -> Arc<Self> {
        Arc::new(Self {
            path,
            snapshot,
            lock: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
        })
    }

    /// The outcome of the last attempt, if any.
    pub fn last(&self) -> Option<LastReload> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Reloads; returns the new generation.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.lock.lock().await;
        let result = self.try_reload().await;
        let (label, message) = match &result {
            Ok(generation) => {
                info!(generation, file = %self.path.display(), "config reloaded");
                ("ok", None)
            }
            Err(e) => {
                error!(error = %e, file = %self.path.display(), "config reload failed; the old config keeps serving");
                ("error", Some(e.to_string()))
            }
        };
        metrics().config_reloads.with_label_values(&[label]).inc();
        let at_unix_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Ok(mut last) = self.last.lock() {
            *last = Some(LastReload {
                at_unix_s,
                result: label,
                message,
            });
        }
        result
    }

    async fn try_reload(&self) -> Result<u64, ReloadError> {
        let config = config::load(&self.path).map_err(ReloadError::Invalid)?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let old = self.snapshot.load_full();
        let fixed = restart_only_changes(&old.config, &config);
        if !fixed.is_empty() {
            return Err(ReloadError::RestartRequired(fixed));
        }
        let next = Snapshot::build(config, Some(&old), old.generation + 1)
            .map_err(|e| ReloadError::Build(e.to_string()))?;
        // New groups are checked before they take traffic, so a dead new peer is never
        // sent a request on the strength of Pingora's "healthy until proven otherwise".
        for (name, group) in &next.upstreams {
            let reused = old
                .upstreams
                .get(name)
                .is_some_and(|g| Arc::ptr_eq(g, group));
            if !reused {
                group.check_before_traffic().await;
            }
        }
        let generation = next.generation;
        self.snapshot.store(Arc::new(next));
        Ok(generation)
    }
}

/// Settings a running process cannot change (listeners and process shape).
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.server, &new.server);
    let mut changed = Vec::new();
    if a.listen != b.listen {
        changed.push("server.listen");
    }
    if a.admin_listen != b.admin_listen {
        changed.push("server.admin_listen");
    }
    if a.threads != b.threads {
        changed.push("server.threads");
    }
    if a.grace_period != b.grace_period {
        changed.push("server.grace_period_s");
    }
    if a.tls.as_ref().map(|t| (t.listen, t.min_version))
        != b.tls.as_ref().map(|t| (t.listen, t.min_version))
    {
        changed.push("server.tls.listen / min_version");
    }
    if a.h2c != b.h2c {
        changed.push("server.h2c");
    }
    if a.client_header_timeout != b.client_header_timeout {
        changed.push("server.client_header_timeout_ms");
    }
    if old.redis.as_ref().map(|r| (&r.url, &r.cluster))
        != new.redis.as_ref().map(|r| (&r.url, &r.cluster))
    {
        changed.push("redis.url");
    }
    if old.kafka != new.kafka {
        changed.push("kafka");
    }
    if old.access_log != new.access_log {
        changed.push("access_log");
    }
    changed
}

/// Background service that reloads on SIGHUP. Pingora does not handle SIGHUP, whose
/// default action would kill the process.
pub struct ReloadSignalService {
    reloader: Arc<Reloader>,
    access_log: Arc<AccessLog>,
    early: EarlyHangups,
}

/// Claims SIGHUP for the whole process before any listener opens. The reload service
/// starts on its own thread some time after the listeners; a SIGHUP in between would
/// otherwise take its default action and end the process (seen: a reload sent the
/// moment the proxy port answered). What arrives early is remembered and reloaded once
/// the service runs.
#[derive(Clone)]
pub struct EarlyHangups(Arc<AtomicBool>);

impl EarlyHangups {
    /// Installs the SIGHUP handler; call before the server starts.
    pub fn claim() -> std::io::Result<Self> {
        let seen = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, seen.clone())?;
        Ok(Self(seen))
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

impl ReloadSignalService {
    /// Reloads through `reloader` on each SIGHUP, and reopens `access_log` (logrotate);
    /// `early` holds what arrived before the service ran.
    pub fn new(reloader: Arc<Reloader>, access_log: Arc<AccessLog>, early: EarlyHangups) -> Self {
        Self {
            reloader,
            access_log,
            early,
        }
    }

    async fn on_hangup(&self) {
        info!("SIGHUP received; reopening the access log, reloading the config");
        self.access_log.reopen();
        // The outcome is logged and counted by `reload`.
        let _ = self.reloader.reload().await;
    }
}

#[async_trait]
impl BackgroundService for ReloadSignalService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot listen for SIGHUP; reload only through POST /admin/reload");
                return;
            }
        };
        // Our stream is registered now: a SIGHUP from here on reaches it.
        if self.early.take() {
            self.on_hangup().await;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    self.on_hangup().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, peers: &str, kafka: bool) -> Config {
        let mut yaml = format!(
            "server: {{ listen: \"{listen}\", admin_listen: \"127.0.0.1:2\" }}\n\
             upstreams:\n  g: {{ peers: [{peers}] }}\n\
             routes:\n  - {{ name: main, path_prefix: /, upstream: g }}\n"
        );
        if kafka {
            yaml.push_str("kafka: { brokers: \"127.0.0.1:9\", topic: t }\n");
        }
        crate::config::parse(std::path::Path::new("t.yaml"), &yaml).expect("config")
    }

    #[test]
    fn only_listener_and_process_settings_need_a_restart() {
        let old = config("127.0.0.1:1", "\"127.0.0.1:3\"", false);
        let peers = config("127.0.0.1:1", "\"127.0.0.1:3\", \"127.0.0.1:4\"", false);
        assert!(restart_only_changes(&old, &peers).is_empty());
        let moved = config("127.0.0.1:5", "\"127.0.0.1:3\"", false);
        assert_eq!(restart_only_changes(&old, &moved), ["server.listen"]);
        let kafka = config("127.0.0.1:1", "\"127.0.0.1:3\"", true);
        assert_eq!(restart_only_changes(&old, &kafka), ["kafka"]);
    }
}
