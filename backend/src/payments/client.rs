//! HTTP calls to the two payment processors, each answer sorted by what it proves.

use super::Which;
use crate::rinha;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::Duration;

/// What a `POST /payments` to a processor proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayOutcome {
    /// 2xx: paid now.
    Paid,
    /// 422: this correlationId was paid before (by an earlier call of ours).
    AlreadyPaid,
    /// Not paid: refused connection, 5xx or 429 (the processors fail before storing).
    NotPaid,
    /// Unknown: the call timed out or broke after it was sent; it may still be paid.
    Unknown,
    /// Any other 4xx: the processor will never take this request as it is.
    Refused(u16),
}

impl PayOutcome {
    /// Label for metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::AlreadyPaid => "already_paid",
            Self::NotPaid => "not_paid",
            Self::Unknown => "unknown",
            Self::Refused(_) => "refused",
        }
    }
}

/// A processor's `GET /payments/service-health` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// The processor says it is failing.
    pub failing: bool,
    /// Its current minimum response time, ms.
    #[serde(rename = "minResponseTime")]
    pub min_response_time: u64,
}

impl Health {
    /// Parses a `service-health` body; `None` unless it has both fields.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// A payment as one processor stored it (`GET /payments/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The `requestedAt` it holds.
    pub requested_at: DateTime<Utc>,
}

impl Stored {
    /// Parses a `GET /payments/{id}` body; `None` without an RFC 3339 `requestedAt`.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let body: Value = serde_json::from_slice(body).ok()?;
        let requested_at = body
            .get("requestedAt")
            .and_then(Value::as_str)
            .and_then(rinha::parse_instant)?;
        Some(Self { requested_at })
    }
}

/// Clients for the default and fallback processors.
pub struct ProcessorClient {
    http: reqwest::Client,
    default_url: String,
    fallback_url: String,
    timeout: Duration,
}

impl ProcessorClient {
    /// Calls to `default_url` / `fallback_url` (no trailing slash); `timeout` bounds
    /// lookups, and is what a payment call may take beyond the processor's reported
    /// response time (the caller bounds those, see [`Self::timeout`]).
    pub fn new(default_url: &str, fallback_url: &str, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            default_url: default_url.trim_end_matches('/').to_string(),
            fallback_url: fallback_url.trim_end_matches('/').to_string(),
            timeout,
        })
    }

    /// The call timeout given to [`Self::new`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn url(&self, which: Which, path: &str) -> String {
        let base = match which {
            Which::Default => &self.default_url,
            Which::Fallback => &self.fallback_url,
        };
        format!("{base}{path}")
    }

    /// Sends one payment. Not bounded here: the caller drops the future when it stops
    /// waiting (its outcome is then unknown).
    pub async fn pay(
        &self,
        which: Which,
        correlation_id: &str,
        cents: i64,
        requested_at: DateTime<Utc>,
    ) -> PayOutcome {
        let body = json!({
            "correlationId": correlation_id,
            "amount": rinha::cents_to_json(cents),
            "requestedAt": rinha::format_instant(requested_at),
        });
        let sent = self
            .http
            .post(self.url(which, "/payments"))
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => PayOutcome::Paid,
                    422 => PayOutcome::AlreadyPaid,
                    429 | 500..=599 => PayOutcome::NotPaid,
                    other => PayOutcome::Refused(other),
                }
            }
            // Nothing was sent: it cannot have been paid.
            Err(e) if e.is_connect() => PayOutcome::NotPaid,
            Err(_) => PayOutcome::Unknown,
        }
    }

    /// Asks `which` whether it holds `correlation_id`: `Ok(None)` means 404.
    pub async fn lookup(&self, which: Which, correlation_id: &str) -> Result<Option<Stored>, ()> {
        let response = self
            .http
            .get(self.url(which, &format!("/payments/{correlation_id}")))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|_| ())?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => {
                let body = response.bytes().await.map_err(|_| ())?;
                Stored::parse(&body).map(Some).ok_or(())
            }
            _ => Err(()),
        }
    }

    /// `GET /payments/service-health`; `None` when it did not answer 200 with the fields.
    pub async fn health(&self, which: Which) -> Option<Health> {
        let response = self
            .http
            .get(self.url(which, "/payments/service-health"))
            .timeout(Duration::from_secs(4))
            .send()
            .await
            .ok()?;
        if response.status().as_u16() != 200 {
            tracing::warn!(processor = which.name(), status = %response.status(), "service-health refused");
            return None;
        }
        Health::parse(&response.bytes().await.ok()?)
    }
}
