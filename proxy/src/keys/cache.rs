//! Per-instance cache of key lookups, so a request rarely waits for Redis.
//!
//! Entries are dropped when any instance changes the key (pub/sub, see `sync`), and
//! expire anyway after a TTL in case a message was missed. While Redis is down, expired
//! positive entries keep working: a known key is not locked out by an outage. Found keys
//! and "no such key" answers are kept apart, each with its own bound, so a flood of random
//! keys can only ever push out other unknown keys, never a key that works.

use super::KeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a found key is trusted without asking Redis again.
const POSITIVE_TTL: Duration = Duration::from_secs(30);
/// How long "no such key" is remembered (protects Redis from floods of bad keys).
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Bound on each map; past it that map starts over (random bad keys cannot grow it).
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    record: Arc<KeyRecord>,
    at: Instant,
}

/// What the cache knows about a key hash.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// Fresh answer: the key exists (`Some`) or not (`None`).
    Fresh(Option<Arc<KeyRecord>>),
    /// A known key whose entry expired; usable when Redis cannot be asked.
    Stale(Arc<KeyRecord>),
    /// Nothing known.
    Miss,
}

/// The cache.
#[derive(Default)]
pub struct KeyCache {
    found: RwLock<HashMap<[u8; 32], Entry>>,
    missing: RwLock<HashMap<[u8; 32], Instant>>,
}

impl KeyCache {
    /// Looks up `hash`.
    pub fn get(&self, hash: &[u8; 32]) -> Cached {
        let found = self
            .found
            .read()
            .ok()
            .and_then(|f| f.get(hash).map(|e| (e.record.clone(), e.at)));
        if let Some((record, at)) = found {
            return if at.elapsed() < POSITIVE_TTL {
                Cached::Fresh(Some(record))
            } else {
                Cached::Stale(record)
            };
        }
        match self.missing.read().ok().and_then(|m| m.get(hash).copied()) {
            Some(at) if at.elapsed() < NEGATIVE_TTL => Cached::Fresh(None),
            _ => Cached::Miss,
        }
    }

    /// Remembers the answer for `hash`.
    pub fn put(&self, hash: [u8; 32], record: Option<Arc<KeyRecord>>) {
        let at = Instant::now();
        match record {
            Some(record) => {
                if let Ok(mut found) = self.found.write() {
                    if found.len() >= MAX_ENTRIES && !found.contains_key(&hash) {
                        found.clear();
                    }
                    found.insert(hash, Entry { record, at });
                }
                if let Ok(mut missing) = self.missing.write() {
                    missing.remove(&hash);
                }
            }
            None => {
                if let Ok(mut missing) = self.missing.write() {
                    if missing.len() >= MAX_ENTRIES && !missing.contains_key(&hash) {
                        missing.clear();
                    }
                    missing.insert(hash, at);
                }
                if let Ok(mut found) = self.found.write() {
                    found.remove(&hash);
                }
            }
        }
    }

    /// Forgets `hash` (the key changed somewhere).
    pub fn invalidate(&self, hash: &[u8; 32]) {
        if let Ok(mut found) = self.found.write() {
            found.remove(hash);
        }
        if let Ok(mut missing) = self.missing.write() {
            missing.remove(hash);
        }
    }

    /// Makes every found key stale and forgets every "no such key" (after a pub/sub
    /// reconnect, messages may have been missed): each key is asked again on its next
    /// use, and one that cannot be asked (Redis, or its cluster node, still away) keeps
    /// working as a known key does through an outage.
    pub fn expire_all(&self) {
        let Some(old) = Instant::now().checked_sub(POSITIVE_TTL) else {
            self.clear();
            return;
        };
        if let Ok(mut found) = self.found.write() {
            found.values_mut().for_each(|e| e.at = old);
        }
        if let Ok(mut missing) = self.missing.write() {
            missing.clear();
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut found) = self.found.write() {
            found.clear();
        }
        if let Ok(mut missing) = self.missing.write() {
            missing.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyStatus;

    fn record() -> KeyRecord {
        KeyRecord {
            id: "key_1".into(),
            name: "n".into(),
            tier: "free".into(),
            status: KeyStatus::Active,
            created_at: "2026-01-01T00:00:00Z".into(),
            limits: None,
        }
    }

    #[test]
    fn hits_misses_and_invalidation() {
        let cache = KeyCache::default();
        let (h1, h2) = ([1u8; 32], [2u8; 32]);
        assert_eq!(cache.get(&h1), Cached::Miss);
        cache.put(h1, Some(Arc::new(record())));
        cache.put(h2, None);
        assert_eq!(cache.get(&h1), Cached::Fresh(Some(Arc::new(record()))));
        assert_eq!(cache.get(&h2), Cached::Fresh(None));
        cache.invalidate(&h1);
        assert_eq!(cache.get(&h1), Cached::Miss);
        cache.clear();
        assert_eq!(cache.get(&h2), Cached::Miss);
    }

    #[test]
    fn after_a_reconnect_known_keys_are_stale_not_forgotten() {
        let cache = KeyCache::default();
        let (good, bad) = ([3u8; 32], [4u8; 32]);
        cache.put(good, Some(Arc::new(record())));
        cache.put(bad, None);
        cache.expire_all();
        assert!(
            matches!(cache.get(&good), Cached::Stale(_)),
            "asked again, usable if Redis is away"
        );
        assert_eq!(cache.get(&bad), Cached::Miss);
    }

    #[test]
    fn a_flood_of_unknown_keys_never_evicts_a_known_one() {
        let cache = KeyCache::default();
        let good = [7u8; 32];
        cache.put(good, Some(Arc::new(record())));
        for i in 0..=MAX_ENTRIES as u32 {
            let mut bad = [0u8; 32];
            bad[..4].copy_from_slice(&i.to_le_bytes());
            bad[31] = 1;
            cache.put(bad, None);
        }
        assert_eq!(cache.get(&good), Cached::Fresh(Some(Arc::new(record()))));
    }
}
