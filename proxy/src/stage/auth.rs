//! Auth stage: the route says `auth: api_key` -> the request must carry an active key.
//!
//! Missing or unknown key -> 401; disabled or revoked -> 403; the key store unreachable
//! and the key not cached -> 503 `auth_store_unavailable`. Keys never reach logs or
//! metrics; only the key id goes on.

use crate::ctx::Refusal;
use crate::keys::cache::{Cached, KeyCache};
use crate::keys::store::KeyStore;
use crate::keys::{extract_key, hash_key, KeyHeaderError, KeyRecord, KeyStatus};
use crate::metrics::metrics;
use std::sync::Arc;
use std::time::Duration;

/// A key record shared between the cache and the requests using it.
pub type SharedKey = Arc<KeyRecord>;

/// The auth stage's shared state.
pub struct Auth {
    cache: Arc<KeyCache>,
    store: Option<KeyStore>,
}

fn deny(status: u16, code: &'static str, message: &str) -> Refusal {
    metrics().auth_failures.with_label_values(&[code]).inc();
    Refusal::new(status, code, message)
}

impl Auth {
    /// Checks keys against `cache`, then `store`.
    pub fn new(cache: Arc<KeyCache>, store: Option<KeyStore>) -> Self {
        Self { cache, store }
    }

    /// The key record for a request, or the refusal to send.
    pub async fn check(
        &self,
        headers: &http::HeaderMap,
        timeout: Duration,
    ) -> Result<SharedKey, Refusal> {
        let key = match extract_key(headers) {
            Ok(key) => key,
            Err(KeyHeaderError::Missing) => {
                return Err(deny(
                    401,
                    "missing_api_key",
                    "send an API key in X-API-Key or Authorization: Bearer",
                ))
            }
            Err(KeyHeaderError::Malformed) => {
                return Err(deny(
                    401,
                    "invalid_api_key",
                    "the API key is malformed or sent more than once",
                ))
            }
        };
        let hash = hash_key(key);
        let record = match self.cache.get(&hash) {
            Cached::Fresh(record) => record,
            cached => match self.lookup(&hash, timeout).await {
                Ok(record) => record,
                // Redis is away: a key we knew keeps working.
                Err(()) => match cached {
                    Cached::Stale(record) => Some(record),
                    _ => {
                        return Err(deny(
                            503,
                            "auth_store_unavailable",
                            "the key store is unavailable; try again shortly",
                        ))
                    }
                },
            },
        };
        match record {
            None => Err(deny(401, "invalid_api_key", "unknown API key")),
            Some(r) if r.status == KeyStatus::Revoked => {
                Err(deny(403, "api_key_revoked", "this API key was revoked"))
            }
            Some(r) if r.status == KeyStatus::Disabled => {
                Err(deny(403, "api_key_disabled", "this API key is disabled"))
            }
            Some(r) => Ok(r),
        }
    }

    async fn lookup(&self, hash: &[u8; 32], timeout: Duration) -> Result<Option<SharedKey>, ()> {
        let Some(store) = &self.store else {
            return Err(());
        };
        match store.lookup(hash, timeout).await {
            Ok(record) => {
                let record = record.map(Arc::new);
                self.cache.put(*hash, record.clone());
                Ok(record)
            }
            Err(e) => {
                tracing::debug!(error = %e, "key lookup failed");
                Err(())
            }
        }
    }
}
