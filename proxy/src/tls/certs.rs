//! The certificates of the HTTPS listener: read and checked when the config is loaded (so
//! a broken or mismatched pair fails `sluice --test` and a reload, naming its field), then
//! chosen per handshake by the client's SNI.

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::net::IpAddr;
use std::path::Path;

/// One certificate chain with its key and the host names it serves.
#[derive(Clone)]
pub struct Certificate {
    /// Leaf first, then intermediates.
    pub chain: Vec<X509>,
    /// The leaf's private key.
    pub key: PKey<Private>,
    /// Lower-case names (`api.example.com`, `*.example.com`) chosen by SNI.
    pub hosts: Vec<String>,
    /// The leaf's serial number, hex (logs, tests).
    pub serial: String,
    /// The leaf's SHA-256 fingerprint: two loads of the same files compare equal.
    fingerprint: Vec<u8>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("Certificate")
            .field("hosts", &self.hosts)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.hosts == other.hosts
    }
}

/// A problem with one certificate entry: the field it belongs to and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertProblem {
    /// `cert`, `key` or `hosts[N]`, relative to the entry.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl CertProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What loading one entry found: the certificate, or the reasons there is none; and
/// warnings that do not stop it serving (an expired certificate).
#[derive(Debug)]
pub struct Loaded {
    /// The usable certificate, when every check passed.
    pub certificate: Option<Certificate>,
    /// Errors: the entry cannot be used.
    pub errors: Vec<CertProblem>,
    /// Warnings: it is used, but someone should look.
    pub warnings: Vec<CertProblem>,
}

/// Reads `cert_path` (PEM chain) and `key_path` (PEM key) and checks that they parse,
/// that the key belongs to the leaf, and that the leaf covers each of `hosts` (when
/// `hosts` is empty, the leaf's own DNS names are served).
pub fn load(cert_path: &Path, key_path: &Path, hosts: &[String]) -> Loaded {
    let mut out = Loaded {
        certificate: None,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let chain =
        read(cert_path, "cert", &mut out.errors).and_then(|pem| match X509::stack_from_pem(&pem) {
            Ok(chain) if !chain.is_empty() => Some(chain),
            Ok(_) => {
                out.errors.push(CertProblem::new(
                    "cert",
                    format!("{} holds no PEM certificate", cert_path.display()),
                ));
                None
            }
            Err(e) => {
                out.errors.push(CertProblem::new(
                    "cert",
                    format!("{} is not a PEM certificate: {e}", cert_path.display()),
                ));
                None
            }
        });
    // The error text of a key parse is left out: it could quote key material.
    let key = read(key_path, "key", &mut out.errors).and_then(|pem| {
        PKey::private_key_from_pem(&pem).ok().or_else(|| {
            out.errors.push(CertProblem::new(
                "key",
                format!("{} is not a PEM private key", key_path.display()),
            ));
            None
        })
    });
    let (Some(chain), Some(key)) = (chain, key) else {
        return out;
    };
    let leaf = &chain[0];
    let matches = leaf
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        out.errors.push(CertProblem::new(
            "key",
            format!(
                "{} is not the key of the certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
        ));
    }
    let names = CertNames::of(leaf);
    let served: Vec<String> = if hosts.is_empty() {
        names.dns.clone()
    } else {
        hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect()
    };
    for (i, host) in served.iter().enumerate() {
        if !names.covers(host) {
            out.errors.push(CertProblem::new(
                format!("hosts[{i}]"),
                format!(
                    "the certificate in {} does not cover \"{host}\" (it names {})",
                    cert_path.display(),
                    names.describe()
                ),
            ));
        }
    }
    if served.is_empty() {
        out.errors.push(CertProblem::new(
            "hosts",
            format!(
                "the certificate in {} names no DNS host; list the hosts it serves",
                cert_path.display()
            ),
        ));
    }
    if let Ok(now) = Asn1Time::days_from_now(0) {
        if leaf.not_after() < now {
            out.warnings.push(CertProblem::new(
                "cert",
                format!(
                    "the certificate in {} expired on {}",
                    cert_path.display(),
                    leaf.not_after()
                ),
            ));
        }
    }
    if !out.errors.is_empty() {
        return out;
    }
    let serial = leaf
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default();
    let fingerprint = leaf
        .digest(MessageDigest::sha256())
        .map(|d| d.to_vec())
        .unwrap_or_default();
    out.certificate = Some(Certificate {
        // Hosts are matched without regard to a trailing dot or case.
        hosts: served
            .iter()
            .map(|h| h.trim_end_matches('.').to_string())
            .collect(),
        chain,
        key,
        serial,
        fingerprint,
    });
    out
}

/// The bytes of `path`, or an error against `field`.
fn read(path: &Path, field: &str, errors: &mut Vec<CertProblem>) -> Option<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| {
            errors.push(CertProblem::new(
                field,
                format!("cannot read {}: {e}", path.display()),
            ))
        })
        .ok()
}

/// The names a certificate is valid for.
struct CertNames {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl CertNames {
    fn of(leaf: &X509) -> Self {
        let mut names = Self {
            dns: Vec::new(),
            ips: Vec::new(),
        };
        if let Some(sans) = leaf.subject_alt_names() {
            for san in &sans {
                if let Some(dns) = san.dnsname() {
                    names.dns.push(dns.to_ascii_lowercase());
                }
                match san.ipaddress() {
                    Some(b) if b.len() == 4 => {
                        names.ips.push(IpAddr::from([b[0], b[1], b[2], b[3]]));
                    }
                    Some(b) if b.len() == 16 => {
                        let mut octets = [0u8; 16];
                        octets.copy_from_slice(b);
                        names.ips.push(IpAddr::from(octets));
                    }
                    _ => {}
                }
            }
        }
        // Without subject alternative names, clients fall back to the common name.
        if names.dns.is_empty() && names.ips.is_empty() {
            for entry in leaf.subject_name().entries_by_nid(Nid::COMMONNAME) {
                if let Ok(cn) = entry.data().to_string() {
                    names.dns.push(cn.to_ascii_lowercase());
                }
            }
        }
        names
    }

    fn covers(&self, host: &str) -> bool {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        self.dns.iter().any(|name| host_matches(name, host))
    }

    fn describe(&self) -> String {
        let all: Vec<String> = self
            .dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect();
        if all.is_empty() {
            "no host".to_string()
        } else {
            all.join(", ")
        }
    }
}

/// Whether `pattern` (a name, or `*.` and a name: one whole left-most label) matches
/// `host`; both lower case.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => pattern == host,
    }
}

/// The certificates of a listener; the first is the default (clients without SNI, or
/// naming a host no certificate lists).
#[derive(Debug, Clone, PartialEq)]
pub struct CertStore {
    certificates: Vec<Certificate>,
}

impl CertStore {
    /// A store of `certificates` (at least one; the first is the default).
    pub fn new(certificates: Vec<Certificate>) -> Option<Self> {
        (!certificates.is_empty()).then_some(Self { certificates })
    }

    /// The certificate for `sni`: an exact host first, then a wildcard, then the default.
    pub fn select(&self, sni: Option<&str>) -> &Certificate {
        let default = &self.certificates[0];
        let Some(sni) = sni.map(str::to_ascii_lowercase) else {
            return default;
        };
        let exact = self.certificates.iter().find(|c| {
            c.hosts
                .iter()
                .any(|h| !h.starts_with("*.") && host_matches(h, &sni))
        });
        exact
            .or_else(|| {
                self.certificates
                    .iter()
                    .find(|c| c.hosts.iter().any(|h| host_matches(h, &sni)))
            })
            .unwrap_or(default)
    }

    /// Every certificate, the default first.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_whole_label() {
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(host_matches(
            "*.example.com",
            "API.example.com.".to_ascii_lowercase().as_str()
        ));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", ".example.com"));
        assert!(host_matches("example.com", "example.com."));
        assert!(!host_matches("example.com", "www.example.com"));
    }
}
