//! Active health checks: Pingora's [`HttpHealthCheck`] with our thresholds and a 2xx
//! validator, or the gRPC check of [`super::grpc_health`]; both report to the
//! [`Observer`], which updates `sluice_upstream_healthy` and logs each change once. `health_checks::HealthCheckService` drives the checks of whatever groups the
//! current config snapshot has.

use super::observer::Observer;
use crate::breaker::Breaker;
use crate::config::{HealthCheckKind, UpstreamConfig};
use pingora_core::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};

/// The health check of one group: HTTP, or gRPC (see [`super::grpc_health`]).
pub fn check_for(
    upstream: &str,
    config: &UpstreamConfig,
    breakers: Vec<(std::net::SocketAddr, std::sync::Arc<Breaker>)>,
) -> Box<dyn HealthCheck + Send + Sync> {
    let observer = Observer {
        upstream: upstream.to_string(),
        breakers,
    };
    match &config.health_check.kind {
        HealthCheckKind::Http => http_check(config, observer),
        HealthCheckKind::Grpc { service } => Box::new(super::grpc_health::GrpcHealthCheck::new(
            config, service, observer,
        )),
    }
}

/// A Pingora HTTP health check for one group.
fn http_check(config: &UpstreamConfig, observer: Observer) -> Box<dyn HealthCheck + Send + Sync> {
    let cfg = &config.health_check;
    let mut check = HttpHealthCheck::new("localhost", config.tls.is_some());
    super::wire::apply(&mut check.peer_template, config);
    if let Some(tls) = &config.tls {
        check.peer_template.sni = tls.sni.clone();
    }
    check.consecutive_success = cfg.healthy_after;
    check.consecutive_failure = cfg.unhealthy_after;
    check.peer_template.options.connection_timeout = Some(cfg.timeout);
    check.peer_template.options.total_connection_timeout = Some(cfg.timeout);
    check.peer_template.options.read_timeout = Some(cfg.timeout);
    check.peer_template.options.write_timeout = Some(cfg.timeout);
    if let Ok(mut req) = RequestHeader::build("GET", cfg.path.as_bytes(), None) {
        if req.insert_header("Host", "localhost").is_ok() {
            check.req = req;
        }
    }
    check.validator = Some(Box::new(|resp| {
        if resp.status.is_success() {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::CustomCode("non 2xx code", resp.status.as_u16()),
                "during http health check",
            )
        }
    }));
    check.health_changed_callback = Some(Box::new(observer));
    Box::new(check)
}
