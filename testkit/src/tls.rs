//! Throwaway certificates for TLS tests, made by `scripts/tls-certs.sh` (the same script
//! `make up` uses) with the openssl CLI: a local CA and server certificates signed by it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A local CA in a temp folder, and the certificates it issued.
pub struct TestCa {
    dir: tempfile::TempDir,
}

/// A server certificate and its key.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The serial it was given (hex, as openssl prints it).
    pub serial: String,
}

impl TestCa {
    /// A new CA.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-tls-")
            .tempdir()
            .expect("tempdir");
        Self { dir }
    }

    /// The CA certificate clients trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where the certificates are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issues `name` for `sans` (`DNS:localhost,IP:127.0.0.1`), valid `days` (0: already
    /// expired), with `serial`.
    pub fn issue(&self, name: &str, serial: u32, days: u32, sans: &str) -> IssuedCert {
        let script = crate::workspace_root().join("scripts/tls-certs.sh");
        let out = Command::new(&script)
            .arg(self.dir.path())
            .arg(name)
            .arg(serial.to_string())
            .arg(days.to_string())
            .arg(sans)
            .output()
            .expect("running scripts/tls-certs.sh");
        assert!(
            out.status.success(),
            "tls-certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        IssuedCert {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
            serial: format!("{serial:02X}"),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
