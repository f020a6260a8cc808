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
    /// Adds another row's values.
    pub fn merge(&mut self, other: &Counts) {
        self.count += other.count;
        self.errors += other.errors;
        self.limited += other.limited;
        self.hedged += other.hedged;
        self.retried += other.retried;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        histogram::merge(&mut self.hist, &other.hist);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds one event to `rows`.
pub fn add(rows: &mut HashMap<Key, Counts>, e: &RequestEvent) {
    let key = Key {
        minute_ms: e.ts - e.ts.rem_euclid(60_000),
        route: e.route.clone(),
        key_id: e.key_id.clone().unwrap_or_default(),
        status_class: e.status_class(),
    };
    let c = rows.entry(key).or_default();
    c.count += 1;
    c.errors += i64::from(e.status >= 500 || e.status == 0);
    c.limited += i64::from(e.limited);
    c.hedged += i64::from(e.hedged);
    c.retried += i64::from(e.retries > 0);
    c.bytes_in += clamp(e.bytes_in);
    c.bytes_out += clamp(e.bytes_out);
    c.hist[histogram::bucket(e.latency_us)] += 1;
}
