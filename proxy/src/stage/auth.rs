//! Auth stage: the route says `auth: api_key` -> the request must carry an active key.
//!
//! Missing or unknown key -> 401; disabled or revoked -> 403; the key store unreachable
//! and the key not cached -> 503 `auth_store_unavailable`; a client address that keeps
//! sending unknown keys -> 429 `too_many_auth_failures` before its next lookup (see
//! `limiter::failures`). Keys never reach logs or metrics; only the key id goes on.

use crate::config::AuthMode;
use crate::ctx::RequestCtx;
use crate::keys::cache::{Cached, KeyCache};
use crate::keys::store::KeyStore;
use crate::keys::{extract_key, hash_key, KeyHeaderError, KeyStatus, SharedKey};
use crate::limiter::failures::FailureLimiter;
use crate::metrics::metrics;
use crate::respond::Refusal;
use crate::stage::{client_ip, RequestStage, Step};
use pingora_proxy::Session;
use std::sync::Arc;
use std::time::Duration;

/// Unknown or missing keys one client address may send at once, and per second after.
const FAILURE_BURST: u32 = 50;
const FAILURES_PER_S: f64 = 5.0;

/// The auth stage: this instance's key cache, then the key store.
pub struct AuthStage {
    cache: Arc<KeyCache>,
    store: Option<KeyStore>,
    failures: FailureLimiter,
}

impl RequestStage for AuthStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora_core::Result<Step> {
        if !ctx
            .route
            .as_ref()
            .is_some_and(|r| r.config.auth == AuthMode::ApiKey)
        {
            return Ok(Step::Continue);
        }
        let started = std::time::Instant::now();
        let client = client_ip(session, ctx);
        let checked = self
            .check(
                &session.req_header().headers,
                client,
                ctx.snapshot.config.redis_timeout,
            )
            .await;
        ctx.timings.push(("auth", started.elapsed()));
        match checked {
            Ok(key) => {
                ctx.key = Some(key);
                Ok(Step::Continue)
            }
            Err(refusal) => Ok(Step::Respond(refusal)),
        }
    }
}

fn deny(status: u16, code: &'static str, message: &str) -> Refusal {
    metrics().auth_failures.with_label_values(&[code]).inc();
    Refusal::new(status, code, message)
}

impl AuthStage {
    /// Checks keys against `cache`, then `store`.
    pub fn new(cache: Arc<KeyCache>, store: Option<KeyStore>) -> Self {
        Self {
            cache,
            store,
            failures: FailureLimiter::new(FAILURES_PER_S, FAILURE_BURST),
        }
    }

    /// The key record for a request from `client`, or the refusal to send.
    pub async fn check(
        &self,
        headers: &http::HeaderMap,
        client: Option<std::net::IpAddr>,
        timeout: Duration,
    ) -> Result<SharedKey, Refusal> {
        let checked = self.check_key(headers, client, timeout).await;
        if let (Err(refusal), Some(ip)) = (&checked, client) {
            if refusal.status == 401 {
                self.failures.failed(ip, tokio::time::Instant::now());
            }
        }
        checked
    }

    async fn check_key(
        &self,
        headers: &http::HeaderMap,
        client: Option<std::net::IpAddr>,
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
            cached => match self.lookup_unless_blocked(&hash, client, timeout).await? {
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

    /// The store's answer, unless `client` has failed too often to cost another lookup.
    async fn lookup_unless_blocked(
        &self,
        hash: &[u8; 32],
        client: Option<std::net::IpAddr>,
        timeout: Duration,
    ) -> Result<Result<Option<SharedKey>, ()>, Refusal> {
        if let Some(wait) =
            client.and_then(|ip| self.failures.blocked(ip, tokio::time::Instant::now()))
        {
            return Err(deny(
                429,
                "too_many_auth_failures",
                "too many requests with missing or unknown API keys from this address",
            )
            .with_header("retry-after", wait.to_string()));
        }
        Ok(self.lookup(hash, timeout).await)
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
