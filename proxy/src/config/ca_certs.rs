//! CA certificates a config names (an upstream group's `tls.ca`), parsed once.

use openssl::x509::X509;
use std::sync::Arc;

/// CA certificates to trust for one group, kept with the PEM they came from (two loads
/// of one file compare equal, so a reload that changes nothing keeps the group).
#[derive(Clone)]
pub struct CaCerts {
    pub(super) pem: Vec<u8>,
    /// Parsed, in the shape Pingora's peer options take.
    pub certs: Arc<Box<[X509]>>,
}

impl std::fmt::Debug for CaCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaCerts({} certificates)", self.certs.len())
    }
}

impl PartialEq for CaCerts {
    fn eq(&self, other: &Self) -> bool {
        self.pem == other.pem
    }
}
