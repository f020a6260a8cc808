//! An upstream group's wire: `protocol: http1 | h2 | h2c`, `tls: { sni, verify, ca }`,
//! and its health check's kind (`http`, or `grpc` for HTTP/2 groups).

use super::ca_certs::CaCerts;
use super::model::{HealthCheckKind, UpstreamProtocol, UpstreamTls};
use super::raw::{RawHealthCheck, RawUpstreamTls};
use super::scope::Scope;
use openssl::x509::X509;
use std::sync::Arc;

/// `protocol` and `tls` of one group.
pub fn protocol_and_tls(
    protocol: Option<&str>,
    tls: Option<&RawUpstreamTls>,
    errors: &mut Scope<'_, '_>,
) -> (UpstreamProtocol, Option<UpstreamTls>) {
    let protocol = match protocol.map(str::trim) {
        None | Some("http1") => UpstreamProtocol::Http1,
        Some("h2") => UpstreamProtocol::H2,
        Some("h2c") => UpstreamProtocol::H2c,
        Some(other) => {
            errors.push(
                "protocol",
                format!("must be http1, h2 (HTTP/2 over TLS) or h2c (cleartext HTTP/2), got \"{other}\""),
            );
            UpstreamProtocol::Http1
        }
    };
    match (protocol, tls) {
        (UpstreamProtocol::H2, None) => errors.push(
            "tls",
            "protocol h2 is HTTP/2 over TLS: add tls: { sni: ... } (or use h2c for cleartext)",
        ),
        (UpstreamProtocol::H2c, Some(_)) => errors.push(
            "tls",
            "h2c is cleartext HTTP/2; for HTTP/2 over TLS use protocol: h2",
        ),
        _ => {}
    }
    let tls = tls.map(|raw| {
        let mut errors = errors.scope("tls");
        let sni = raw.sni.clone().unwrap_or_default();
        if raw.verify && sni.trim().is_empty() {
            errors.push(
                "sni",
                "name the host the peers' certificates are for (or verify: false)",
            );
        }
        let ca = raw.ca.as_ref().and_then(|path| ca_certs(path, &mut errors));
        UpstreamTls {
            sni,
            verify: raw.verify,
            ca,
        }
    });
    (protocol, tls)
}

fn ca_certs(path: &str, errors: &mut Scope<'_, '_>) -> Option<CaCerts> {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            errors.push("ca", format!("cannot read {path}: {e}"));
            return None;
        }
    };
    match X509::stack_from_pem(&pem) {
        Ok(certs) if !certs.is_empty() => Some(CaCerts {
            pem,
            certs: Arc::new(certs.into_boxed_slice()),
        }),
        Ok(_) => {
            errors.push("ca", format!("{path} holds no PEM certificate"));
            None
        }
        Err(e) => {
            errors.push("ca", format!("{path} is not PEM: {e}"));
            None
        }
    }
}

/// The health check's kind; `grpc` only for HTTP/2 groups.
pub fn health_kind(
    raw: &RawHealthCheck,
    protocol: UpstreamProtocol,
    errors: &mut Scope<'_, '_>,
) -> HealthCheckKind {
    match raw.kind.as_deref().map(str::trim) {
        None | Some("http") => HealthCheckKind::Http,
        Some("grpc") => {
            if protocol == UpstreamProtocol::Http1 {
                errors.push(
                    "health_check.kind",
                    "grpc health checks need an HTTP/2 group (protocol: h2 or h2c)",
                );
            }
            HealthCheckKind::Grpc {
                service: raw.service.clone(),
            }
        }
        Some(other) => {
            errors.push(
                "health_check.kind",
                format!("must be http or grpc, got \"{other}\""),
            );
            HealthCheckKind::Http
        }
    }
}
