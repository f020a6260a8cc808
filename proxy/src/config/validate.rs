//! Raw structs -> [`Config`]: every rule checked, every failure collected. Each rule works
//! on one section through a [`Scope`], which names its fields relative to the section, so
//! every error still says the full path (`routes[2].hedge.delay`) and its line.

use super::error::ConfigErrors;
use super::model::{
    AccessLogConfig, AccessLogFormat, AdminConfig, BreakerConfig, Config, HealthCheckConfig,
    KafkaConfig, OnRedisError, RateLimitConfig, RedisConfig, ServerConfig, Tier, TlsConfig,
    TlsVersion, UpstreamConfig,
};
use super::raw::{
    RawAccessLog, RawAdmin, RawBreaker, RawConfig, RawHealthCheck, RawKafka, RawRateLimit,
    RawRedis, RawServer, RawTier, RawTls, RawUpstream,
};
use super::scope::{Errors, Scope};
use super::validate_routes::{cidrs, routes};
use crate::tls::certs;
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Redis wait when the config has no `redis:` section.
const NO_REDIS_TIMEOUT: Duration = Duration::from_millis(20);

/// Checks every rule; returns the config only when none failed.
pub fn validate(
    file: &Path,
    raw: RawConfig,
    mut errors: Errors<'_>,
) -> Result<Config, ConfigErrors> {
    let server = server(&raw.server, &mut errors.scope("server"));
    let upstreams: BTreeMap<String, UpstreamConfig> = raw
        .upstreams
        .iter()
        .filter_map(|(name, up)| {
            let config = upstream(up, &mut errors.scope(format!("upstreams.{name}")))?;
            Some((name.clone(), config))
        })
        .collect();
    let redis = raw
        .redis
        .as_ref()
        .and_then(|r| redis(r, &mut errors.scope("redis")));
    let admin = admin(&raw.admin, &mut errors.scope("admin"));
    let tiers = tiers(raw.tiers.as_ref(), &mut errors.scope("tiers"));
    let ratelimit = ratelimit(&raw.ratelimit, &mut errors.scope("ratelimit"));
    let kafka = raw
        .kafka
        .as_ref()
        .map(|k| kafka(k, &mut errors.scope("kafka")));
    let access_log = raw
        .access_log
        .as_ref()
        .map(|a| access_log(a, &mut errors.scope("access_log")));
    let routes = routes(
        &raw.routes,
        &raw.upstreams,
        &tiers,
        redis.is_some(),
        &mut errors.scope("routes"),
    );

    if raw.server.tls.is_none() {
        for (i, route) in raw.routes.iter().enumerate() {
            if route.redirect_https {
                errors.push(
                    &format!("routes[{i}].redirect_https"),
                    "needs an HTTPS listener (server.tls)",
                );
            }
        }
    }

    if !errors.found.is_empty() {
        errors.found.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(ConfigErrors(errors.found));
    }
    match server {
        Some(server) => Ok(Config {
            warnings: std::mem::take(&mut errors.warned),
            redis_timeout: redis.as_ref().map_or(NO_REDIS_TIMEOUT, |r| r.timeout),
            source: file.to_path_buf(),
            text: String::new(),
            server,
            upstreams,
            routes,
            redis,
            admin,
            tiers,
            ratelimit,
            kafka,
            access_log,
        }),
        None => Err(ConfigErrors::whole_file(
            file,
            None,
            "invalid server section",
        )),
    }
}

fn socket_addr(text: &str, field: &str, errors: &mut Scope<'_, '_>) -> Option<SocketAddr> {
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

fn server(raw: &RawServer, errors: &mut Scope<'_, '_>) -> Option<ServerConfig> {
    let listen = socket_addr(&raw.listen, "listen", errors);
    let admin_listen = socket_addr(&raw.admin_listen, "admin_listen", errors);
    if raw.threads == 0 {
        errors.push("threads", "must be at least 1");
    }
    if raw.client_header_timeout_ms < 100 {
        errors.push("client_header_timeout_ms", "must be at least 100");
    }
    let key_id_header = header_name(&raw.key_id_header, "key_id_header", errors);
    let tier_header = header_name(&raw.tier_header, "tier_header", errors);
    if listen.is_some() && listen == admin_listen {
        errors.push("admin_listen", "must differ from server.listen");
    }
    let tls = raw
        .tls
        .as_ref()
        .and_then(|t| tls(t, &mut errors.scope("tls")));
    if let Some(tls) = &tls {
        if Some(tls.listen) == listen || Some(tls.listen) == admin_listen {
            errors.push(
                "tls.listen",
                "must differ from server.listen and admin_listen",
            );
        }
    }
    Some(ServerConfig {
        listen: listen?,
        admin_listen: admin_listen?,
        threads: raw.threads.max(1),
        grace_period: Duration::from_secs(raw.grace_period_s),
        upstream_header: raw.upstream_header,
        client_header_timeout: Duration::from_millis(raw.client_header_timeout_ms),
        trusted_proxies: cidrs(&raw.trusted_proxies, "trusted_proxies", errors),
        key_id_header: key_id_header?,
        tier_header: tier_header?,
        tls,
        h2c: raw.h2c,
    })
}

/// `server.tls`: the listener, and every certificate read and checked now, so a broken
/// pair fails here (at `--test`, at start, at a reload) and not in a handshake.
fn tls(raw: &RawTls, errors: &mut Scope<'_, '_>) -> Option<TlsConfig> {
    let listen = socket_addr(&raw.listen, "listen", errors);
    let min_version = match raw.min_version.trim() {
        "1.2" => TlsVersion::Tls12,
        "1.3" => TlsVersion::Tls13,
        other => {
            errors.push(
                "min_version",
                format!("must be \"1.2\" or \"1.3\" (older versions are never offered), got \"{other}\""),
            );
            TlsVersion::Tls12
        }
    };
    if raw.certificates.is_empty() {
        errors.push("certificates", "must list at least one { cert, key } pair");
    }
    let mut loaded = Vec::new();
    for (i, entry) in raw.certificates.iter().enumerate() {
        let mut errors = errors.scope(&format!("certificates[{i}]"));
        let result = certs::load(Path::new(&entry.cert), Path::new(&entry.key), &entry.hosts);
        for problem in result.errors {
            errors.push(&problem.field, problem.message);
        }
        for problem in result.warnings {
            errors.warn(&problem.field, problem.message);
        }
        loaded.extend(result.certificate);
    }
    Some(TlsConfig {
        listen: listen?,
        certificates: std::sync::Arc::new(crate::tls::CertStore::new(loaded)?),
        min_version,
        redirect_http: raw.redirect_http,
    })
}

fn header_name(
    text: &str,
    field: &'static str,
    errors: &mut Scope<'_, '_>,
) -> Option<http::HeaderName> {
    match http::HeaderName::from_bytes(text.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            errors.push(field, format!("\"{text}\" is not a valid header name"));
            None
        }
    }
}

fn upstream(raw: &RawUpstream, errors: &mut Scope<'_, '_>) -> Option<UpstreamConfig> {
    if raw.peers.is_empty() {
        errors.push("peers", "must list at least one peer");
    }
    let mut peers = Vec::with_capacity(raw.peers.len());
    let mut seen = HashSet::new();
    for (i, text) in raw.peers.iter().enumerate() {
        let field = format!("peers[{i}]");
        if let Some(addr) = socket_addr(text, &field, errors) {
            if seen.insert(addr) {
                peers.push(addr);
            } else {
                errors.push(&field, format!("duplicate peer {addr}"));
            }
        }
    }
    if raw.connect_timeout_ms == 0 {
        errors.push("connect_timeout_ms", "must be greater than 0");
    }
    if raw.read_timeout_ms == 0 {
        errors.push("read_timeout_ms", "must be greater than 0");
    }
    let (protocol, tls) =
        super::upstream_proto::protocol_and_tls(raw.protocol.as_deref(), raw.tls.as_ref(), errors);
    let mut health_check = health_check(&raw.health_check, &mut errors.scope("health_check"));
    health_check.kind = super::upstream_proto::health_kind(&raw.health_check, protocol, errors);
    let breaker = breaker(&raw.breaker, &mut errors.scope("breaker"));
    for (i, status) in raw.retry_on_status.iter().enumerate() {
        if !(500..=599).contains(status) {
            errors.push(&format!("retry_on_status[{i}]"), "must be a 5xx status");
        }
    }
    Some(UpstreamConfig {
        peers,
        health_check,
        retries: raw.retries,
        connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
        read_timeout: Duration::from_millis(raw.read_timeout_ms),
        breaker,
        retry_on_status: raw.retry_on_status.clone(),
        protocol,
        tls,
    })
}

fn breaker(raw: &RawBreaker, errors: &mut Scope<'_, '_>) -> BreakerConfig {
    if !(raw.failure_rate > 0.0 && raw.failure_rate <= 1.0) {
        errors.push("failure_rate", "must be greater than 0 and at most 1");
    }
    if raw.min_requests == 0 {
        errors.push("min_requests", "must be at least 1");
    }
    if raw.window_ms < 100 {
        errors.push("window_ms", "must be at least 100");
    }
    if raw.open_ms == 0 {
        errors.push("open_ms", "must be greater than 0");
    }
    if raw.half_open_probes == 0 {
        errors.push("half_open_probes", "must be at least 1");
    }
    for (i, status) in raw.failure_statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            errors.push(&format!("failure_statuses[{i}]"), "must be an HTTP status");
        }
    }
    BreakerConfig {
        failure_rate: raw.failure_rate,
        min_requests: raw.min_requests.max(1),
        window: Duration::from_millis(raw.window_ms.max(100)),
        consecutive_failures: raw.consecutive_failures,
        open: Duration::from_millis(raw.open_ms.max(1)),
        half_open_probes: raw.half_open_probes.max(1),
        failure_statuses: raw.failure_statuses.clone(),
    }
}

fn health_check(raw: &RawHealthCheck, errors: &mut Scope<'_, '_>) -> HealthCheckConfig {
    if !raw.path.starts_with('/') {
        errors.push("path", "must start with '/'");
    }
    if raw.interval_ms < 50 {
        errors.push("interval_ms", "must be at least 50");
    }
    if raw.timeout_ms == 0 {
        errors.push("timeout_ms", "must be greater than 0");
    }
    if raw.healthy_after == 0 {
        errors.push("healthy_after", "must be at least 1");
    }
    if raw.unhealthy_after == 0 {
        errors.push("unhealthy_after", "must be at least 1");
    }
    HealthCheckConfig {
        path: raw.path.clone(),
        interval: Duration::from_millis(raw.interval_ms),
        timeout: Duration::from_millis(raw.timeout_ms),
        healthy_after: raw.healthy_after.max(1),
        unhealthy_after: raw.unhealthy_after.max(1),
        kind: super::model::HealthCheckKind::Http,
    }
}

fn redis(raw: &RawRedis, errors: &mut Scope<'_, '_>) -> Option<RedisConfig> {
    let is_url = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
    match (raw.url.is_empty(), raw.cluster.is_empty()) {
        (true, true) => {
            errors.push("url", "is required (or cluster: [nodes])");
            return None;
        }
        (false, false) => {
            errors.push(
                "cluster",
                "give url (one server) or cluster (seed nodes), not both",
            );
            return None;
        }
        (false, true) if !is_url(&raw.url) => {
            errors.push(
                "url",
                "must start with redis:// (e.g. redis://127.0.0.1:6379)",
            );
            return None;
        }
        _ => {}
    }
    for (i, node) in raw.cluster.iter().enumerate() {
        if !is_url(node) {
            errors.push(
                &format!("cluster[{i}]"),
                "must start with redis:// (e.g. redis://10.0.0.1:6379)",
            );
        }
    }
    if raw.timeout_ms == 0 {
        errors.push("timeout_ms", "must be greater than 0");
    }
    Some(RedisConfig {
        url: raw.url.clone(),
        cluster: raw.cluster.clone(),
        timeout: Duration::from_millis(raw.timeout_ms.max(1)),
    })
}

fn admin(raw: &RawAdmin, errors: &mut Scope<'_, '_>) -> AdminConfig {
    let token_sha256 = match raw.token_sha256.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(text, &mut hash).is_ok() {
                Some(hash)
            } else {
                errors.push(
                    "token_sha256",
                    "must be 64 hex digits (sha256sum of the token)",
                );
                None
            }
        }
    };
    if !(60..=7 * 24 * 3600).contains(&raw.session_ttl_s) {
        errors.push("session_ttl_s", "must be between 60 and 604800 (a week)");
    }
    let analytics_url = raw
        .analytics_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(url) = analytics_url {
        let ok = reqwest::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !ok {
            errors.push(
                "analytics_url",
                "must be an http:// or https:// URL, e.g. http://127.0.0.1:8100",
            );
        }
    }
    AdminConfig {
        token_sha256,
        session_ttl: Duration::from_secs(raw.session_ttl_s),
        analytics_url: analytics_url.map(|u| u.trim_end_matches('/').to_string()),
    }
}

/// The tiers every install starts with.
fn seed_tiers() -> BTreeMap<String, Tier> {
    [
        ("free", 10.0, 100),
        ("pro", 100.0, 1000),
        ("enterprise", 1000.0, 10_000),
    ]
    .into_iter()
    .map(|(name, rate_per_s, burst)| (name.to_string(), Tier { rate_per_s, burst }))
    .collect()
}

fn tiers(
    raw: Option<&BTreeMap<String, RawTier>>,
    errors: &mut Scope<'_, '_>,
) -> BTreeMap<String, Tier> {
    let Some(raw) = raw else { return seed_tiers() };
    let mut tiers = BTreeMap::new();
    for (name, tier) in raw {
        let mut errors = errors.scope(name);
        if !(tier.rate_per_s.is_finite() && tier.rate_per_s > 0.0) {
            errors.push("rate_per_s", "must be a number greater than 0");
            continue;
        }
        if tier.burst == 0 {
            errors.push("burst", "must be at least 1");
            continue;
        }
        tiers.insert(
            name.clone(),
            Tier {
                rate_per_s: tier.rate_per_s,
                burst: tier.burst,
            },
        );
    }
    tiers
}

fn ratelimit(raw: &RawRateLimit, errors: &mut Scope<'_, '_>) -> RateLimitConfig {
    let on_redis_error = match raw.on_redis_error.as_str() {
        "local" => OnRedisError::Local,
        "open" => OnRedisError::Open,
        "closed" => OnRedisError::Closed,
        other => {
            errors.push(
                "on_redis_error",
                format!("must be local, open or closed, got \"{other}\""),
            );
            OnRedisError::Local
        }
    };
    if raw.expected_instances == 0 {
        errors.push("expected_instances", "must be at least 1");
    }
    RateLimitConfig {
        on_redis_error,
        expected_instances: raw.expected_instances.max(1),
    }
}

fn access_log(raw: &RawAccessLog, errors: &mut Scope<'_, '_>) -> AccessLogConfig {
    if raw.path.trim().is_empty() {
        errors.push("path", "must name a file");
    }
    let format = match raw.format.as_deref() {
        None | Some("json") => AccessLogFormat::Json,
        Some("combined") => AccessLogFormat::Combined,
        Some(other) => {
            errors.push(
                "format",
                format!("must be json or combined, got \"{other}\""),
            );
            AccessLogFormat::Json
        }
    };
    if raw.queue_capacity == 0 {
        errors.push("queue_capacity", "must be at least 1");
    }
    AccessLogConfig {
        path: PathBuf::from(&raw.path),
        format,
        queue_capacity: raw.queue_capacity.max(1),
    }
}

fn kafka(raw: &RawKafka, errors: &mut Scope<'_, '_>) -> KafkaConfig {
    if raw.brokers.trim().is_empty() {
        errors.push("brokers", "must name at least one host:port");
    }
    if raw.topic.is_empty() || raw.topic.len() > 249 {
        errors.push("topic", "must be 1 to 249 characters");
    }
    if raw.queue_capacity == 0 || raw.queue_capacity > 10_000_000 {
        errors.push("queue_capacity", "must be from 1 to 10000000");
    }
    if raw
        .spill_dir
        .as_deref()
        .is_some_and(|d| d.trim().is_empty())
    {
        errors.push(
            "spill_dir",
            "must be a folder path (leave it out to spill nothing)",
        );
    }
    if raw.spill_max_mb == 0 || raw.spill_max_mb > 1_048_576 {
        errors.push("spill_max_mb", "must be from 1 to 1048576");
    }
    let value_compression = match raw.value_compression.as_str() {
        "none" => sluice_event::ValueCompression::None,
        "zstd" => sluice_event::ValueCompression::Zstd,
        other => {
            errors.push(
                "value_compression",
                format!("must be none or zstd, got \"{other}\""),
            );
            sluice_event::ValueCompression::None
        }
    };
    KafkaConfig {
        brokers: raw.brokers.clone(),
        topic: raw.topic.clone(),
        queue_capacity: raw.queue_capacity,
        linger_ms: raw.linger_ms,
        spill_dir: raw.spill_dir.as_ref().map(std::path::PathBuf::from),
        spill_max_bytes: raw.spill_max_mb.saturating_mul(1 << 20),
        value_compression,
    }
}
