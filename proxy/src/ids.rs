//! Unique ids made by this process without a syscall per id: a random instance id drawn
//! once at start, and a sequence. Event ids, request ids and W3C trace context all come
//! from here.

use bytes::Bytes;
use http::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where ids come from: this process's instance id and a counter.
#[derive(Debug)]
pub struct IdSource {
    instance: u64,
    sequence: AtomicU64,
}

impl Default for IdSource {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        // Without the OS's randomness, the pid and the clock still tell instances apart.
        let instance = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                (nanos as u64) ^ (u64::from(std::process::id()) << 32)
            }
        };
        Self {
            instance,
            sequence: AtomicU64::new(0),
        }
    }
}

impl IdSource {
    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    /// `{instance}-{sequence}`, both 16 hex digits: unique across instances and
    /// restarts.
    pub fn next_id(&self) -> String {
        // Only hex digits and a dash: the check cannot fail.
        String::from_utf8(self.next_id_bytes()).unwrap_or_default()
    }

    /// [`Self::next_id`] as a header value (a request id), without a copy.
    pub fn next_id_value(&self) -> Option<HeaderValue> {
        header_value(self.next_id_bytes())
    }

    fn next_id_bytes(&self) -> Vec<u8> {
        let mut id = Vec::with_capacity(33);
        id.extend_from_slice(&hex16(self.instance));
        id.push(b'-');
        id.extend_from_slice(&hex16(self.next_sequence()));
        id
    }

    /// A fresh W3C `traceparent` (version 00, sampled) as a header value: a 128-bit trace
    /// id of instance and sequence, and a span id that is never zero.
    pub fn next_traceparent(&self) -> Option<HeaderValue> {
        let sequence = self.next_sequence();
        let span = (sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.instance) | 1;
        let mut t = Vec::with_capacity(55);
        t.extend_from_slice(b"00-");
        t.extend_from_slice(&hex16(self.instance));
        t.extend_from_slice(&hex16(sequence));
        t.push(b'-');
        t.extend_from_slice(&hex16(span));
        t.extend_from_slice(b"-01");
        header_value(t)
    }
}

/// A header value that takes over `bytes` instead of copying them (`None` only for bytes
/// a header may not carry, which an id made here never has).
fn header_value(bytes: Vec<u8>) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from(bytes)).ok()
}

/// `n` as 16 lower-case hex digits, two per byte (on every request: `format!` costs
/// ~10×, and one `char` at a time ~3×).
fn hex16(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (pair, byte) in out.chunks_exact_mut(2).zip(n.to_be_bytes()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    out
}

/// Whether `value` is a `traceparent` worth passing on: version 00, lower-case hex ids,
/// neither id all zeros (W3C Trace Context §3.2).
pub fn is_valid_traceparent(value: &[u8]) -> bool {
    let hex = |s: &[u8]| {
        s.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let zero = |s: &[u8]| s.iter().all(|b| *b == b'0');
    match value {
        [b'0', b'0', b'-', rest @ ..] if rest.len() == 52 => {
            let (trace, span, flags) = (&rest[..32], &rest[33..49], &rest[50..]);
            rest[32] == b'-'
                && rest[49] == b'-'
                && hex(trace)
                && hex(span)
                && hex(flags)
                && !zero(trace)
                && !zero(span)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_traceparents_valid() {
        let ids = IdSource::default();
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 33, "{a}");
        assert_eq!(&hex16(0x00ab_cdef_0123_4567), b"00abcdef01234567");
        assert_eq!(&hex16(u64::MAX), b"ffffffffffffffff");
        let value = ids.next_id_value().expect("an id is a header value");
        assert_eq!(value.len(), 33);
        assert_ne!(value.as_bytes(), a.as_bytes());
        for _ in 0..100 {
            let t = ids
                .next_traceparent()
                .expect("a traceparent is a header value");
            assert!(is_valid_traceparent(t.as_bytes()), "{t:?}");
        }
        assert!(is_valid_traceparent(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"",
        ] {
            assert!(
                !is_valid_traceparent(bad),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
