//! The raw (YAML) shape of the edge settings: the HTTPS listener and TLS to upstreams.

use serde::Deserialize;

/// `server.tls:` — the HTTPS listener.
#[derive(Debug, Deserialize)]
pub struct RawTls {
    /// `ip:port`.
    pub listen: String,
    /// Certificate chains and keys, PEM; the first is the default.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// `"1.2"` (default) or `"1.3"`.
    #[serde(default = "default_tls_min_version")]
    pub min_version: String,
    /// On the plain listener, routes with `redirect_https` answer 308 to https.
    #[serde(default)]
    pub redirect_http: bool,
}

/// One entry of `server.tls.certificates`.
#[derive(Debug, Deserialize)]
pub struct RawCertificate {
    /// The certificate chain file (leaf first).
    pub cert: String,
    /// The private key file.
    pub key: String,
    /// Host names served with it (`*.example.com` allowed); the certificate's own DNS
    /// names when empty.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `tls:` of an upstream group: TLS to its peers.
#[derive(Debug, Deserialize)]
pub struct RawUpstreamTls {
    /// The name sent as SNI and checked against the peer's certificate.
    #[serde(default)]
    pub sni: Option<String>,
    /// Verify the peer's certificate chain and name (default true).
    #[serde(default = "default_verify")]
    pub verify: bool,
    /// PEM file of the CAs to trust instead of the system's.
    #[serde(default)]
    pub ca: Option<String>,
}

fn default_verify() -> bool {
    true
}

fn default_tls_min_version() -> String {
    "1.2".into()
}
