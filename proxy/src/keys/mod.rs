//! API keys: what a key is, how it is made and hashed, where a request carries it.
//!
//! The plaintext key is shown once, at creation or rotation, and never stored: Redis
//! holds its SHA-256. Lookups hash the presented key and compare hashes (a map lookup
//! on a digest does not leak the key through timing).

pub mod cache;
pub mod store;
pub mod sync;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Longest key accepted from a client; anything longer is not one of ours.
pub const MAX_KEY_LEN: usize = 128;

/// A key's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Works.
    Active,
    /// Temporarily refused (403); can be re-enabled.
    Disabled,
    /// Permanently refused (403).
    Revoked,
}

impl KeyStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A key record shared between the cache and the requests using it.
pub type SharedKey = std::sync::Arc<KeyRecord>;

/// What sluice knows about a key (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// Public identifier, safe for logs, metrics and events.
    pub id: String,
    /// Human label.
    pub name: String,
    /// Rate tier name.
    pub tier: String,
    /// Lifecycle state.
    pub status: KeyStatus,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The key's own limits, overriding its tier's; none: the tier's.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub limits: Option<KeyLimits>,
}

/// A key's own token bucket, in place of its tier's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeyLimits {
    /// Sustained requests per second (> 0).
    pub rate_per_s: f64,
    /// Bucket size (>= 1).
    pub burst: u64,
}

impl KeyLimits {
    /// Parses the stored pair (both empty: none; anything unreadable: none too, so a
    /// damaged field falls back to the tier instead of refusing the key).
    pub fn parse(rate: &str, burst: &str) -> Option<Self> {
        let rate_per_s = rate
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0)?;
        let burst = burst.parse::<u64>().ok().filter(|b| *b >= 1)?;
        Some(Self { rate_per_s, burst })
    }
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Fresh random bytes (from the OS) as hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// A new plaintext key (160 random bits).
pub fn generate_key() -> Result<String, getrandom::Error> {
    Ok(format!("sk_{}", random_hex(20)?))
}

/// A new key id.
pub fn generate_id() -> Result<String, getrandom::Error> {
    Ok(format!("key_{}", random_hex(8)?))
}

/// Why a request carries no usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeaderError {
    /// Neither header present.
    Missing,
    /// Present but unusable: empty, too long, not visible ASCII, or given more than once.
    Malformed,
}

/// The key from `X-API-Key` or `Authorization: Bearer`, checked for shape only.
pub fn extract_key(headers: &http::HeaderMap) -> Result<&str, KeyHeaderError> {
    let mut found: Option<&http::HeaderValue> = None;
    let mut count = 0;
    for value in headers.get_all("x-api-key") {
        found = Some(value);
        count += 1;
    }
    let mut bearer = None;
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let Some(rest) = value.to_str().ok().and_then(|v| strip_bearer(v)) else {
            continue;
        };
        bearer = Some(rest);
        count += 1;
    }
    if count > 1 {
        return Err(KeyHeaderError::Malformed);
    }
    let key = match (found, bearer) {
        (Some(value), None) => value
            .to_str()
            .map_err(|_| KeyHeaderError::Malformed)?
            .trim(),
        (None, Some(key)) => key.trim(),
        _ => return Err(KeyHeaderError::Missing),
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyHeaderError::Malformed);
    }
    Ok(key)
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).expect("header value"));
        }
        map
    }

    #[test]
    fn keys_come_from_either_header() {
        assert_eq!(extract_key(&headers(&[("x-api-key", b"sk_1")])), Ok("sk_1"));
        assert_eq!(
            extract_key(&headers(&[("authorization", b"Bearer sk_2")])),
            Ok("sk_2")
        );
        assert_eq!(
            extract_key(&headers(&[("authorization", b"bearer  sk_3 ")])),
            Ok("sk_3")
        );
    }

    #[test]
    fn odd_headers_are_refused_never_a_panic() {
        use KeyHeaderError::*;
        let long = vec![b'a'; MAX_KEY_LEN + 1];
        let cases: Vec<(HeaderMap, KeyHeaderError)> = vec![
            (headers(&[]), Missing),
            (headers(&[("authorization", b"Basic abc")]), Missing),
            (headers(&[("x-api-key", b"")]), Malformed),
            (headers(&[("x-api-key", b"   ")]), Malformed),
            (headers(&[("x-api-key", &long)]), Malformed),
            (headers(&[("x-api-key", "clé".as_bytes())]), Malformed),
            (headers(&[("x-api-key", b"a b")]), Malformed),
            (
                headers(&[("x-api-key", b"k1"), ("x-api-key", b"k2")]),
                Malformed,
            ),
            (
                headers(&[("x-api-key", b"k1"), ("authorization", b"Bearer k2")]),
                Malformed,
            ),
            (headers(&[("authorization", b"Bearer ")]), Malformed),
        ];
        for (map, want) in cases {
            assert_eq!(extract_key(&map), Err(want), "{map:?}");
        }
    }

    #[test]
    fn random_header_bytes_never_panic() {
        // A cheap fuzz: every byte value, in several lengths and positions.
        for b in 0u8..=255 {
            for len in [1usize, 2, 64, 200] {
                let value = vec![b; len];
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    let mut map = HeaderMap::new();
                    map.insert("x-api-key", v.clone());
                    let _ = extract_key(&map);
                    map.clear();
                    map.insert("authorization", v);
                    let _ = extract_key(&map);
                }
            }
        }
    }

    #[test]
    fn generated_keys_and_ids_are_distinct_and_hash_stably() {
        let (a, b) = (generate_key().expect("rng"), generate_key().expect("rng"));
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 43);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
        assert!(generate_id().expect("rng").starts_with("key_"));
    }
}
