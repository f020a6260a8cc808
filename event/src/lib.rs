//! The request event: one per request through sluice, sent to Kafka by the gateway and
//! consumed by the analytics service. JSON, versioned by `v`.
//!
//! A Kafka message carries one event or several, one JSON object per line (a message
//! with one event is a batch of one), so the gateway can batch without a format change.
//! The lines may come as one zstd frame ([`value`]); readers take both.
//!
//! Readers tolerate what they do not know: unknown fields are ignored and optional fields
//! default, so a newer gateway can add fields without breaking an older consumer. A
//! message that is not an event at all is an error the consumer counts and skips.

use serde::{Deserialize, Serialize};

pub mod value;
pub use value::{BatchEncoder, ValueCompression};

/// The schema version this crate writes.
pub const VERSION: u32 = 1;

/// One request, as the gateway saw it. Never carries an API key, only its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// Schema version.
    pub v: u32,
    /// Unique id (`{instance}-{sequence}`): consumers may dedupe on it.
    pub id: String,
    /// Request start, milliseconds since the Unix epoch.
    pub ts: i64,
    /// Route name, `none` when no route matched.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Request path (no query string).
    pub path: String,
    /// Status sent to the client (0: none, the client went away).
    pub status: u16,
    /// The API key's id, on keyed routes.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The key's tier (or the IP tier), when rate-limited.
    #[serde(default)]
    pub tier: Option<String>,
    /// Client IP.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The peer that answered (`ip:port`).
    #[serde(default)]
    pub upstream: Option<String>,
    /// Time from request start to the end of the response.
    pub latency_us: u64,
    /// Time from sending the (last) attempt upstream to its response header.
    #[serde(default)]
    pub upstream_latency_us: Option<u64>,
    /// The answering peer's breaker as the request ended (`closed`, `open`,
    /// `half_open`), or `open` when every breaker was open and the request was refused.
    #[serde(default)]
    pub breaker: Option<String>,
    /// Request body bytes received.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes sent.
    #[serde(default)]
    pub bytes_out: u64,
    /// Answered 429 by the rate limiter.
    #[serde(default)]
    pub limited: bool,
    /// How the limiter decided (`redis`, `local`, `open`, `closed`), when it ran.
    #[serde(default)]
    pub limiter: Option<String>,
    /// The request id (`X-Request-Id`, the client's or sluice's), to join logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's HTTP version (`1.0`, `1.1`, `2`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    /// A hedge was sent.
    #[serde(default)]
    pub hedged: bool,
    /// Extra attempts after the first.
    #[serde(default)]
    pub retries: u32,
}

/// Why bytes are not an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not an event.
    #[error("not a request event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A version this reader does not understand.
    #[error("unsupported event version {0}")]
    Version(u32),
    /// A zstd-compressed value that does not decompress.
    #[error("compressed value does not decompress: {0}")]
    Frame(std::io::Error),
    /// A compressed value that unpacks to more than [`value::MAX_DECOMPRESSED`] bytes.
    #[error(
        "compressed value unpacks to more than {} bytes",
        value::MAX_DECOMPRESSED
    )]
    TooLarge,
}

impl RequestEvent {
    /// The JSON bytes of the event.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing a struct of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an event; unknown fields are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let event: Self = serde_json::from_slice(bytes)?;
        if event.v == 0 || event.v > VERSION {
            return Err(DecodeError::Version(event.v));
        }
        Ok(event)
    }

    /// Several events as one message: one JSON object per line.
    pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a RequestEvent>) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        for (i, e) in events.into_iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            // Serializing a struct of strings and numbers cannot fail.
            let _ = serde_json::to_writer(&mut out, e);
        }
        out
    }

    /// Every event of a message (see [`RequestEvent::encode_batch`]; zstd-compressed or
    /// not); a line that is not an event is an error in its place, the others still
    /// decode. A compressed value that does not unpack is one error.
    pub fn decode_batch(bytes: &[u8]) -> Vec<Result<Self, DecodeError>> {
        let lines = match value::json_lines(bytes) {
            Ok(lines) => lines,
            Err(e) => return vec![Err(e)],
        };
        lines
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(Self::decode)
            .collect()
    }

    /// The status class label: `2xx`, `4xx`, ...
    pub fn status_class(&self) -> &'static str {
        match self.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RequestEvent {
        RequestEvent {
            v: VERSION,
            id: "abc-1".into(),
            ts: 1_700_000_000_000,
            route: "api".into(),
            method: "GET".into(),
            path: "/api/todos".into(),
            status: 200,
            key_id: Some("key_1".into()),
            tier: Some("free".into()),
            client_ip: Some("127.0.0.1".into()),
            upstream: Some("127.0.0.1:8081".into()),
            latency_us: 1234,
            upstream_latency_us: Some(1000),
            breaker: Some("closed".into()),
            bytes_in: 0,
            bytes_out: 99,
            limited: false,
            limiter: Some("redis".into()),
            hedged: false,
            request_id: None,
            http_version: None,
            retries: 0,
        }
    }

    #[test]
    fn round_trips() {
        let e = event();
        assert_eq!(RequestEvent::decode(&e.encode()).expect("decodes"), e);
        assert_eq!(e.status_class(), "2xx");
    }

    #[test]
    fn unknown_fields_and_missing_optionals_are_tolerated() {
        let json = br#"{"v":1,"id":"x","ts":1,"route":"r","method":"GET","path":"/","status":503,
                       "latency_us":5,"from_the_future":{"a":1}}"#;
        let e = RequestEvent::decode(json).expect("decodes");
        assert_eq!((e.status, e.key_id.as_deref(), e.retries), (503, None, 0));
        assert_eq!(e.status_class(), "5xx");
    }

    #[test]
    fn batches_round_trip_and_a_bad_line_spoils_only_itself() {
        let (a, mut b) = (event(), event());
        b.id = "abc-2".into();
        let bytes = RequestEvent::encode_batch(&[a.clone(), b.clone()]);
        let back: Vec<RequestEvent> = RequestEvent::decode_batch(&bytes)
            .into_iter()
            .map(|r| r.expect("event"))
            .collect();
        assert_eq!(back, vec![a.clone(), b]);
        assert_eq!(
            RequestEvent::decode_batch(&a.encode()).len(),
            1,
            "a single event is a batch of one"
        );
        let mut mixed = a.encode();
        mixed.extend_from_slice(b"\nnot json\n");
        let results = RequestEvent::decode_batch(&mixed);
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
    }

    #[test]
    fn garbage_and_unknown_versions_are_errors_not_panics() {
        assert!(matches!(
            RequestEvent::decode(b"not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            RequestEvent::decode(b"{}"),
            Err(DecodeError::Malformed(_))
        ));
        let mut e = event();
        e.v = 99;
        assert!(matches!(
            RequestEvent::decode(&e.encode()),
            Err(DecodeError::Version(99))
        ));
    }
}
