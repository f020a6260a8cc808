//! Raw structs -> [`Config`]: every rule checked, every failure collected.

use super::error::{ConfigError, ConfigErrors};
use super::lines::LineIndex;
use super::raw::{RawConfig, RawHealthCheck, RawRoute, RawServer, RawUpstream};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated configuration. Immutable; a reload builds a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// The file's text, as validated (for `GET /admin/config`).
    pub text: String,
    /// Listener and process settings.
    pub server: ServerConfig,
    /// Upstream groups by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes in file order (matching order is decided by the router).
    pub routes: Vec<RouteConfig>,
}

/// Validated `server:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Proxy listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Pingora worker threads.
    pub threads: usize,
    /// Grace period for in-flight requests on shutdown.
    pub grace_period: Duration,
    /// Whether responses carry `X-Sluice-Upstream`.
    pub upstream_header: bool,
}

/// A validated upstream group.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Peer addresses, resolved.
    pub peers: Vec<SocketAddr>,
    /// Active health check settings.
    pub health_check: HealthCheckConfig,
    /// Extra attempts on other peers after a connect failure.
    pub retries: usize,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Per-read timeout.
    pub read_timeout: Duration,
}

/// A validated health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    /// Path requested with GET.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Timeout of one check.
    pub timeout: Duration,
    /// Successes needed to become healthy.
    pub healthy_after: usize,
    /// Failures needed to become unhealthy.
    pub unhealthy_after: usize,
}

/// A validated route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Unique name.
    pub name: String,
    /// Host to match, lower-case, without port.
    pub host: Option<String>,
    /// Path prefix, starting with '/'.
    pub path_prefix: String,
    /// Whether the prefix is removed before forwarding.
    pub strip_prefix: bool,
    /// Upstream group name (known to exist).
    pub upstream: String,
}

/// Collects errors with their lines while validation walks the raw structs.
pub struct Errors<'a> {
    file: &'a Path,
    lines: &'a LineIndex,
    found: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    /// An empty collector for `file`.
    pub fn new(file: &'a Path, lines: &'a LineIndex) -> Self {
        Self {
            file,
            lines,
            found: Vec::new(),
        }
    }

    /// Records `message` against `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(ConfigError {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(field),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// Checks every rule; returns the config only when none failed.
pub fn validate(
    file: &Path,
    raw: RawConfig,
    mut errors: Errors<'_>,
) -> Result<Config, ConfigErrors> {
    let server = server(&raw.server, &mut errors);
    let upstreams: BTreeMap<String, UpstreamConfig> = raw
        .upstreams
        .iter()
        .filter_map(|(name, up)| Some((name.clone(), upstream(name, up, &mut errors)?)))
        .collect();
    let routes = routes(&raw.routes, &raw.upstreams, &mut errors);

    if !errors.found.is_empty() {
        errors.found.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(ConfigErrors(errors.found));
    }
    match server {
        Some(server) => Ok(Config {
            source: file.to_path_buf(),
            text: String::new(),
            server,
            upstreams,
            routes,
        }),
        None => Err(ConfigErrors::whole_file(
            file,
            None,
            "invalid server section",
        )),
    }
}

fn socket_addr(text: &str, field: &str, errors: &mut Errors<'_>) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    match text.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Some(addr),
        Ok(None) => {
            errors.push(field, format!("\"{text}\" resolves to no address"));
            None
        }
        Err(_) => {
            errors.push(
                field,
                format!("\"{text}\" is not a host:port address (e.g. 127.0.0.1:8081)"),
            );
            None
        }
    }
}

fn server(raw: &RawServer, errors: &mut Errors<'_>) -> Option<ServerConfig> {
    let listen = socket_addr(&raw.listen, "server.listen", errors);
    let admin_listen = socket_addr(&raw.admin_listen, "server.admin_listen", errors);
    if raw.threads == 0 {
        errors.push("server.threads", "must be at least 1");
    }
    if listen.is_some() && listen == admin_listen {
        errors.push("server.admin_listen", "must differ from server.listen");
    }
    Some(ServerConfig {
        listen: listen?,
        admin_listen: admin_listen?,
        threads: raw.threads.max(1),
        grace_period: Duration::from_secs(raw.grace_period_s),
        upstream_header: raw.upstream_header,
    })
}

fn upstream(name: &str, raw: &RawUpstream, errors: &mut Errors<'_>) -> Option<UpstreamConfig> {
    let base = format!("upstreams.{name}");
    if raw.peers.is_empty() {
        errors.push(&format!("{base}.peers"), "must list at least one peer");
    }
    let mut peers = Vec::with_capacity(raw.peers.len());
    let mut seen = HashSet::new();
    for (i, text) in raw.peers.iter().enumerate() {
        let field = format!("{base}.peers[{i}]");
        if let Some(addr) = socket_addr(text, &field, errors) {
            if seen.insert(addr) {
                peers.push(addr);
            } else {
                errors.push(&field, format!("duplicate peer {addr}"));
            }
        }
    }
    if raw.connect_timeout_ms == 0 {
        errors.push(
            &format!("{base}.connect_timeout_ms"),
            "must be greater than 0",
        );
    }
    if raw.read_timeout_ms == 0 {
        errors.push(&format!("{base}.read_timeout_ms"), "must be greater than 0");
    }
    let health_check = health_check(&format!("{base}.health_check"), &raw.health_check, errors);
    Some(UpstreamConfig {
        peers,
        health_check,
        retries: raw.retries,
        connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
        read_timeout: Duration::from_millis(raw.read_timeout_ms),
    })
}

fn health_check(base: &str, raw: &RawHealthCheck, errors: &mut Errors<'_>) -> HealthCheckConfig {
    if !raw.path.starts_with('/') {
        errors.push(&format!("{base}.path"), "must start with '/'");
    }
    if raw.interval_ms < 50 {
        errors.push(&format!("{base}.interval_ms"), "must be at least 50");
    }
    if raw.timeout_ms == 0 {
        errors.push(&format!("{base}.timeout_ms"), "must be greater than 0");
    }
    if raw.healthy_after == 0 {
        errors.push(&format!("{base}.healthy_after"), "must be at least 1");
    }
    if raw.unhealthy_after == 0 {
        errors.push(&format!("{base}.unhealthy_after"), "must be at least 1");
    }
    HealthCheckConfig {
        path: raw.path.clone(),
        interval: Duration::from_millis(raw.interval_ms),
        timeout: Duration::from_millis(raw.timeout_ms),
        healthy_after: raw.healthy_after.max(1),
        unhealthy_after: raw.unhealthy_after.max(1),
    }
}

fn routes(
    raw: &[RawRoute],
    upstreams: &BTreeMap<String, RawUpstream>,
    errors: &mut Errors<'_>,
) -> Vec<RouteConfig> {
    let mut names = HashSet::new();
    let mut matches = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, route) in raw.iter().enumerate() {
        let base = format!("routes[{i}]");
        if route.name.is_empty() {
            errors.push(&format!("{base}.name"), "must not be empty");
        } else if !names.insert(route.name.as_str()) {
            errors.push(
                &format!("{base}.name"),
                format!("duplicate route name \"{}\"", route.name),
            );
        }
        if !route.path_prefix.starts_with('/') {
            errors.push(&format!("{base}.path_prefix"), "must start with '/'");
        }
        let host = route.host.as_ref().map(|h| h.to_ascii_lowercase());
        if !matches.insert((host.clone(), route.path_prefix.clone())) {
            errors.push(
                &format!("{base}.path_prefix"),
                "another route already matches this host and prefix",
            );
        }
        if !upstreams.contains_key(&route.upstream) {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            errors.push(
                &format!("{base}.upstream"),
                format!(
                    "no upstream named \"{}\" (known: {})",
                    route.upstream,
                    known.join(", ")
                ),
            );
        }
        routes.push(RouteConfig {
            name: route.name.clone(),
            host,
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream: route.upstream.clone(),
        });
    }
    routes
}
