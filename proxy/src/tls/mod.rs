//! HTTPS: the certificates (read and checked with the config, chosen by SNI) and the TLS
//! listener's settings. OpenSSL (Pingora's `openssl` feature): its certificate callback
//! is what lets each handshake pick a certificate from the live config, which is how a
//! SIGHUP rotates certificates without touching open connections; Pingora 0.9 offers
//! that callback for OpenSSL and BoringSSL only.

pub mod certs;
pub mod listener;

pub use certs::{CertStore, Certificate};
