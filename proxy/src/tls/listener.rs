//! The HTTPS listener's settings: TLS 1.2 and 1.3 only (Mozilla's intermediate
//! ciphers), ALPN `h2` then `http/1.1`, and the certificate chosen per handshake by SNI
//! from the snapshot current at that moment, so a reload that brings renewed files
//! changes new handshakes only; established connections keep the session they made.

use crate::config::TlsVersion;
use crate::metrics::metrics;
use crate::snapshot::SharedSnapshot;
use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::ext;
use pingora_core::tls::ssl::{NameType, SslVersion};

/// Chooses each handshake's certificate from the live config.
pub struct SniCertificates {
    snapshot: SharedSnapshot,
}

impl SniCertificates {
    /// Certificates come from `snapshot`'s `server.tls`.
    pub fn new(snapshot: SharedSnapshot) -> Self {
        Self { snapshot }
    }
}

#[async_trait]
impl TlsAccept for SniCertificates {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let snapshot = self.snapshot.load();
        let Some(tls) = snapshot.config.server.tls.as_ref() else {
            return;
        };
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_string);
        let cert = tls.certificates.select(sni.as_deref());
        let Some((leaf, intermediates)) = cert.chain.split_first() else {
            return;
        };
        // A failure here fails this handshake only (no certificate is offered).
        let installed = ext::ssl_use_certificate(ssl, leaf)
            .and_then(|()| {
                intermediates
                    .iter()
                    .try_for_each(|c| ext::ssl_add_chain_cert(ssl, c))
            })
            .and_then(|()| ext::ssl_use_private_key(ssl, &cert.key));
        let outcome = match installed {
            Ok(()) => "ok",
            Err(e) => {
                tracing::error!(error = %e, serial = %cert.serial, "installing the TLS certificate failed");
                "error"
            }
        };
        metrics()
            .tls_certificates_served
            .with_label_values(&[outcome])
            .inc();
    }
}

/// The listener settings: `min` and TLS 1.3, ALPN h2 + http/1.1, certificates by SNI.
pub fn settings(snapshot: SharedSnapshot, min: TlsVersion) -> pingora_core::Result<TlsSettings> {
    let mut settings = TlsSettings::with_callbacks(Box::new(SniCertificates::new(snapshot)))?;
    let min = match min {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    };
    settings.set_min_proto_version(Some(min)).map_err(|e| {
        pingora_core::Error::explain(pingora_core::ErrorType::InternalError, e.to_string())
    })?;
    settings
        .set_max_proto_version(Some(SslVersion::TLS1_3))
        .map_err(|e| {
            pingora_core::Error::explain(pingora_core::ErrorType::InternalError, e.to_string())
        })?;
    settings.enable_h2();
    // Client connections have no L4 read buffer (`header_deadline::client_buffers`, for
    // memory). Without read-ahead OpenSSL reads each record's 5-byte header and then its
    // body: two `recvfrom` per record. With it, one read fills OpenSSL's own record buffer
    // (which it holds per connection anyway) with whatever has arrived.
    settings.set_read_ahead(true);
    Ok(settings)
}
