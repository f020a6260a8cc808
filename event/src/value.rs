//! A Kafka message value: the events' JSON lines, either as they are or as one zstd frame.
//!
//! Compressing the value itself (instead of Kafka's record-batch compression) is for
//! brokers that unpack every record they store: tansu 0.6 decompresses each batch and
//! decodes each record's bytes one by one, and reads back whole stored values to serve a
//! fetch, so its cost follows the uncompressed size (a 200-event value, ~68 KB of JSON, is
//! ~2.3 KB as zstd level 1). A reader tells the two apart by the zstd frame's magic
//! number; a JSON line never starts with it.

use crate::{DecodeError, RequestEvent};
use std::borrow::Cow;
use std::io::Read;

/// The first four bytes of every zstd frame (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Largest value a reader unpacks: far above any batch the gateway writes, and a bound on
/// what a hostile or corrupt frame can make it allocate.
pub const MAX_DECOMPRESSED: u64 = 64 << 20;
/// The most a reader reserves before unpacking, whatever the frame header claims.
const PREALLOCATE_AT_MOST: u64 = 4 << 20;
/// Fast and, on event JSON, ~29× smaller; higher levels cost the gateway CPU for little.
const ZSTD_LEVEL: i32 = 1;

/// How message values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueCompression {
    /// JSON lines as they are (compress with Kafka's own batch compression).
    #[default]
    None,
    /// JSON lines in one zstd frame.
    Zstd,
}

/// Writes batches of events as message values; keeps its zstd context between batches.
pub struct BatchEncoder {
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl BatchEncoder {
    /// An encoder writing `compression`. Falls back to plain JSON lines (which every
    /// reader also takes) if zstd cannot set up a context.
    pub fn new(compression: ValueCompression) -> Self {
        let compressor = match compression {
            ValueCompression::None => None,
            ValueCompression::Zstd => zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
        };
        Self { compressor }
    }

    /// Whether values come out compressed.
    pub fn compresses(&self) -> bool {
        self.compressor.is_some()
    }

    /// One message value holding `events`.
    pub fn encode<'a>(&mut self, events: impl IntoIterator<Item = &'a RequestEvent>) -> Vec<u8> {
        let lines = RequestEvent::encode_batch(events);
        match self.compressor.as_mut().map(|c| c.compress(&lines)) {
            Some(Ok(frame)) => frame,
            // Compression of an in-memory buffer fails only if zstd runs out of memory;
            // the plain lines are still a valid value.
            Some(Err(_)) | None => lines,
        }
    }
}

/// The JSON lines of a value, unpacking a zstd frame (up to [`MAX_DECOMPRESSED`] bytes).
pub(crate) fn json_lines(value: &[u8]) -> Result<Cow<'_, [u8]>, DecodeError> {
    if !value.starts_with(&ZSTD_MAGIC) {
        return Ok(Cow::Borrowed(value));
    }
    let decoder = zstd::stream::read::Decoder::new(value).map_err(DecodeError::Frame)?;
    // The frame header usually states the size (the encoder writes it). It comes from the
    // message, so reserve no more than a generous batch up front; a real one grows.
    let expected = zstd::zstd_safe::get_frame_content_size(value)
        .ok()
        .flatten()
        .unwrap_or(value.len() as u64 * 8)
        .min(PREALLOCATE_AT_MOST);
    let mut out = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(DecodeError::Frame)?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DecodeError::TooLarge);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<RequestEvent> {
        (0..n)
            .map(|i| RequestEvent {
                v: crate::VERSION,
                id: format!("abc-{i}"),
                ts: 1_700_000_000_000 + i as i64,
                route: "todo".into(),
                method: "GET".into(),
                path: "/todos".into(),
                status: if i % 7 == 0 { 429 } else { 200 },
                key_id: None,
                tier: None,
                client_ip: Some("127.0.0.1".into()),
                upstream: Some("127.0.0.1:8081".into()),
                latency_us: 900 + i as u64,
                upstream_latency_us: Some(850),
                breaker: Some("closed".into()),
                bytes_in: 0,
                bytes_out: 1808,
                limited: i % 7 == 0,
                limiter: None,
                hedged: false,
                request_id: None,
                http_version: None,
                retries: 0,
            })
            .collect()
    }

    fn decoded(value: &[u8]) -> Vec<RequestEvent> {
        RequestEvent::decode_batch(value)
            .into_iter()
            .map(|r| r.expect("event"))
            .collect()
    }

    #[test]
    fn compressed_values_round_trip_and_are_much_smaller() {
        let batch = events(200);
        let plain = BatchEncoder::new(ValueCompression::None).encode(&batch);
        let mut zstd = BatchEncoder::new(ValueCompression::Zstd);
        assert!(zstd.compresses());
        let packed = zstd.encode(&batch);
        assert!(packed.starts_with(&ZSTD_MAGIC));
        assert!(
            packed.len() * 10 < plain.len(),
            "{} bytes compressed vs {} plain",
            packed.len(),
            plain.len()
        );
        assert_eq!(decoded(&packed), batch);
        assert_eq!(decoded(&plain), batch);
        // The encoder's context is reused: a second batch is its own frame.
        assert_eq!(decoded(&zstd.encode(&batch[..3])), batch[..3].to_vec());
    }

    #[test]
    fn a_corrupt_frame_is_one_error() {
        let mut packed = BatchEncoder::new(ValueCompression::Zstd).encode(&events(50));
        let half = packed.len() / 2;
        packed.truncate(half);
        let results = RequestEvent::decode_batch(&packed);
        assert_eq!(results.len(), 1);
        assert!(matches!(results[0], Err(DecodeError::Frame(_))));
    }

    #[test]
    fn a_frame_unpacking_past_the_bound_is_refused() {
        let huge = vec![b' '; usize::try_from(MAX_DECOMPRESSED).expect("fits") + 10];
        let bomb = zstd::bulk::compress(&huge, 1).expect("compresses");
        assert!(bomb.len() < 1 << 20, "a small frame");
        assert!(matches!(
            RequestEvent::decode_batch(&bomb).as_slice(),
            [Err(DecodeError::TooLarge)]
        ));
    }
}
