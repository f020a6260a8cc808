//! Answers sluice gives itself instead of an upstream: a [`Refusal`] (status, code,
//! sentence, extra headers) and the one writer of its JSON body
//! `{"error": code, "message": sentence}`, used by every stage and by `fail_to_proxy`.

use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Why sluice answered a request itself instead of an upstream.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Machine-readable code, the `error` field of the JSON body.
    pub code: &'static str,
    /// Human sentence, the `message` field.
    pub message: String,
    /// Extra response headers (`Retry-After`, rate-limit headers).
    pub headers: Vec<(&'static str, String)>,
}

/// Codes other modules act on (the event's `limited` and `breaker` fields).
pub mod code {
    /// The rate limiter said no (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Every healthy peer's breaker was open (503).
    pub const CIRCUIT_OPEN: &str = "upstream_circuit_open";
}

impl Refusal {
    /// A refusal without extra headers.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same refusal with one more response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Whether this is the rate limiter's 429.
    pub fn is_rate_limited(&self) -> bool {
        self.code == code::RATE_LIMITED
    }

    /// Whether this is the every-breaker-open 503.
    pub fn is_circuit_open(&self) -> bool {
        self.code == code::CIRCUIT_OPEN
    }

    /// Writes the refusal as a complete JSON response, or as a gRPC status to a gRPC
    /// call (see [`crate::grpc_status`]).
    pub async fn write(&self, session: &mut Session) -> Result<()> {
        if crate::grpc_status::is_grpc(&session.req_header().headers) {
            return self.write_grpc(session).await;
        }
        let body = serde_json::json!({ "error": self.code, "message": self.message }).to_string();
        let mut header = ResponseHeader::build(self.status, Some(3 + self.headers.len()))?;
        header.insert_header("content-type", "application/json")?;
        header.insert_header("content-length", body.len().to_string())?;
        for (name, value) in &self.headers {
            // Appended: a refusal may carry a header twice on purpose (Server-Timing).
            header.append_header(*name, value.as_str())?;
        }
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(body.into()), true).await?;
        Ok(())
    }

    async fn write_grpc(&self, session: &mut Session) -> Result<()> {
        let mut header = ResponseHeader::build(200, Some(4 + self.headers.len()))?;
        header.insert_header("content-type", "application/grpc")?;
        header.insert_header(
            "grpc-status",
            crate::grpc_status::code_for(self.status).to_string(),
        )?;
        header.insert_header(
            "grpc-message",
            crate::grpc_status::encode_message(&self.message),
        )?;
        for (name, value) in &self.headers {
            header.append_header(*name, value.as_str())?;
        }
        // Headers with the end of the stream: gRPC's Trailers-Only response.
        session
            .write_response_header(Box::new(header), true)
            .await?;
        Ok(())
    }
}
