//! Unique ids made by this process without a syscall per id: a random instance id drawn
//! once at start, and a sequence. Event ids, request ids and W3C trace context all come
//! from here.

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
        let mut id = String::with_capacity(33);
        push_hex(&mut id, self.instance);
        id.push('-');
        push_hex(&mut id, self.next_sequence());
        id
    }

    /// A fresh W3C `traceparent` (version 00, sampled): a 128-bit trace id of instance
    /// and sequence, and a span id that is never zero.
    pub fn next_traceparent(&self) -> String {
        let sequence = self.next_sequence();
        let span = (sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.instance) | 1;
        let mut t = String::with_capacity(55);
        t.push_str("00-");
        push_hex(&mut t, self.instance);
        push_hex(&mut t, sequence);
        t.push('-');
        push_hex(&mut t, span);
        t.push_str("-01");
        t
    }
}

/// Appends `n` as 16 lower-case hex digits (on every request: `format!` costs ~10×, and
/// pushing them one `char` at a time ~3×).
fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = DIGITS[((n >> ((15 - i) * 4)) & 0xf) as usize];
    }
    // Always ASCII; the check is a few instructions on 16 bytes.
    out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
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
        let mut hex = String::new();
        push_hex(&mut hex, 0x00ab_cdef_0123_4567);
        assert_eq!(hex, "00abcdef01234567");
        for _ in 0..100 {
            let t = ids.next_traceparent();
            assert!(is_valid_traceparent(t.as_bytes()), "{t}");
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
