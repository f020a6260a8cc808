//! Per-instance cache of key lookups, so a request rarely waits for Redis.
//!
//! Entries are dropped when any instance changes the key (pub/sub, see `sync`), and
//! expire anyway after a TTL in case a message was missed. While Redis is down, expired
//! positive entries keep working: a known key is not locked out by an outage.

use super::KeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a found key is trusted without asking Redis again.
const POSITIVE_TTL: Duration = Duration::from_secs(30);
/// How long "no such key" is remembered (protects Redis from floods of bad keys).
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Bound on entries; past it the cache starts over (random bad keys cannot grow it).
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    record: Option<Arc<KeyRecord>>,
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
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl KeyCache {
    /// Looks up `hash`.
    pub fn get(&self, hash: &[u8; 32]) -> Cached {
        let Ok(entries) = self.entries.read() else {
            return Cached::Miss;
        };
        let Some(entry) = entries.get(hash) else {
            return Cached::Miss;
        };
        let ttl = if entry.record.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        };
        match (&entry.record, entry.at.elapsed() < ttl) {
            (record, true) => Cached::Fresh(record.clone()),
            (Some(record), false) => Cached::Stale(record.clone()),
            (None, false) => Cached::Miss,
        }
    }

    /// Remembers the answer for `hash`.
    pub fn put(&self, hash: [u8; 32], record: Option<Arc<KeyRecord>>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                hash,
                Entry {
                    record,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Forgets `hash` (the key changed somewhere).
    pub fn invalidate(&self, hash: &[u8; 32]) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(hash);
        }
    }

    /// Forgets everything (after a pub/sub reconnect, messages may have been missed).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
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
}
