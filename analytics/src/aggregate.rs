//! Folding events into per-minute aggregates in memory, before one write per batch.

use crate::histogram;
use sluice_event::RequestEvent;
use std::collections::HashMap;

/// One aggregate row's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Minute start, milliseconds since the epoch.
    pub minute_ms: i64,
    /// Route name.
    pub route: String,
    /// API key id, `""` for none.
    pub key_id: String,
    /// Status class (`2xx`, ...).
    pub status_class: &'static str,
}

/// One aggregate row's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// Requests.
    pub count: i64,
    /// 5xx or no response.
    pub errors: i64,
    /// Rate-limited.
    pub limited: i64,
    /// Hedged.
    pub hedged: i64,
    /// Retried at least once.
    pub retried: i64,
    /// Request bytes.
    pub bytes_in: i64,
    /// Response bytes.
    pub bytes_out: i64,
    /// Latency histogram.
    pub hist: Vec<i64>,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            count: 0,
            errors: 0,
            limited: 0,
            hedged: 0,
            retried: 0,
            bytes_in: 0,
            bytes_out: 0,
            hist: vec![0; histogram::BUCKETS],
        }
    }
}

impl Counts {
    /// Adds another row's values (saturating: stored sums can be as large as bigint).
    pub fn merge(&mut self, other: &Counts) {
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.limited = self.limited.saturating_add(other.limited);
        self.hedged = self.hedged.saturating_add(other.hedged);
        self.retried = self.retried.saturating_add(other.retried);
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        histogram::merge(&mut self.hist, &other.hist);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds one event to `rows`.
pub fn add(rows: &mut HashMap<Key, Counts>, e: &RequestEvent) {
    let key = Key {
        minute_ms: e.ts.saturating_sub(e.ts.rem_euclid(60_000)),
        route: e.route.clone(),
        key_id: e.key_id.clone().unwrap_or_default(),
        status_class: e.status_class(),
    };
    // Saturating: the sizes come from the wire; a forged one must not wrap (or panic).
    let c = rows.entry(key).or_default();
    c.count = c.count.saturating_add(1);
    c.errors = c
        .errors
        .saturating_add(i64::from(e.status >= 500 || e.status == 0));
    c.limited = c.limited.saturating_add(i64::from(e.limited));
    c.hedged = c.hedged.saturating_add(i64::from(e.hedged));
    c.retried = c.retried.saturating_add(i64::from(e.retries > 0));
    c.bytes_in = c.bytes_in.saturating_add(clamp(e.bytes_in));
    c.bytes_out = c.bytes_out.saturating_add(clamp(e.bytes_out));
    let bucket = &mut c.hist[histogram::bucket(e.latency_us)];
    *bucket = bucket.saturating_add(1);
}
