//! The dashboard's live traffic: every [`INTERVAL`] the request counters are read
//! ([`sample::Sample`]) and the last [`KEEP`] readings are kept; `/admin/stats` answers the
//! differences between them as rates, latency percentiles and status classes per route,
//! and `/admin/upstreams` each peer's recent error rate.

pub mod sample;

use crate::metrics::metrics;
use pingora_core::server::ShutdownWatch;
use sample::{PeerCounts, RouteCounts, Sample};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the counters are read.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Readings kept: ten minutes.
const KEEP: usize = 301;

/// The last readings of this process's counters.
#[derive(Default)]
pub struct TrafficHistory {
    samples: Mutex<VecDeque<Sample>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl TrafficHistory {
    /// Reads the counters now and keeps the reading.
    pub fn record(&self) {
        self.push(Sample::take(metrics(), now_ms()));
    }

    fn push(&self, sample: Sample) {
        let mut samples = self.lock();
        samples.push_back(sample);
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        // Each change is one push or pop, so a poisoned lock still holds a whole deque.
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the counters every [`INTERVAL`] until the server shuts down.
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.record(),
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Rates over the last `window`, one point per pair of adjacent readings, and the
    /// totals over the window.
    pub fn series(&self, window: Duration) -> Value {
        let samples = self.lock();
        let newest = samples.back().map_or(0, |s| s.at_ms);
        let since = newest.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let kept: Vec<&Sample> = samples.iter().filter(|s| s.at_ms >= since).collect();
        let points: Vec<Value> = kept.windows(2).map(|w| point(w[0], w[1])).collect();
        let totals = match (kept.first(), kept.last()) {
            (Some(a), Some(b)) if kept.len() > 1 => totals(a, b),
            _ => json!({}),
        };
        json!({ "interval_s": INTERVAL.as_secs(), "points": points, "totals": totals })
    }

    /// Each peer's attempts and failures over the last `window` (the oldest reading in it
    /// against the newest).
    pub fn peers_recent(&self, window: Duration) -> BTreeMap<(String, String), PeerCounts> {
        let samples = self.lock();
        let Some(newest) = samples.back() else {
            return BTreeMap::new();
        };
        let since = newest
            .at_ms
            .saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let Some(oldest) = samples.iter().find(|s| s.at_ms >= since) else {
            return BTreeMap::new();
        };
        newest
            .peers
            .iter()
            .map(|(k, now)| {
                let then = oldest.peers.get(k).copied().unwrap_or_default();
                let counts = PeerCounts {
                    attempts: now.attempts.saturating_sub(then.attempts),
                    failures: now.failures.saturating_sub(then.failures),
                };
                (k.clone(), counts)
            })
            .collect()
    }
}

/// `b - a` for one route (a route absent from `a` had all zeros then).
fn route_delta(a: Option<&RouteCounts>, b: &RouteCounts) -> RouteCounts {
    let zero = RouteCounts::default();
    let a = a.unwrap_or(&zero);
    let mut d = RouteCounts {
        timed: b.timed.saturating_sub(a.timed),
        ..RouteCounts::default()
    };
    for (i, n) in b.by_class.iter().enumerate() {
        d.by_class[i] = n.saturating_sub(a.by_class[i]);
    }
    d.buckets = b
        .buckets
        .iter()
        .enumerate()
        .map(|(i, (le, n))| (*le, n.saturating_sub(a.buckets.get(i).map_or(0, |x| x.1))))
        .collect();
    d
}

fn add(into: &mut RouteCounts, d: &RouteCounts) {
    into.timed += d.timed;
    for (i, n) in d.by_class.iter().enumerate() {
        into.by_class[i] += n;
    }
    if into.buckets.is_empty() {
        into.buckets.clone_from(&d.buckets);
    } else {
        for (slot, (_, n)) in into.buckets.iter_mut().zip(&d.buckets) {
            slot.1 += n;
        }
    }
}

/// The `q` quantile in milliseconds, interpolated within its histogram bucket as
/// Prometheus' `histogram_quantile` does; `None` without observations.
pub fn quantile_ms(d: &RouteCounts, q: f64) -> Option<f64> {
    if d.timed == 0 {
        return None;
    }
    let rank = q * d.timed as f64;
    let mut lower = (0.0, 0u64);
    for &(le, cumulative) in &d.buckets {
        if cumulative as f64 >= rank {
            let in_bucket = (cumulative - lower.1) as f64;
            let share = if in_bucket > 0.0 {
                (rank - lower.1 as f64) / in_bucket
            } else {
                0.0
            };
            return Some((lower.0 + (le - lower.0) * share) * 1000.0);
        }
        lower = (le, cumulative);
    }
    // Past the last finite bucket: its bound is the best that can be said.
    Some(lower.0 * 1000.0)
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// `{"1xx": …, "5xx": …}` from the counts per status class, each passed through `value`.
fn by_class(d: &RouteCounts, value: impl Fn(u64) -> Value) -> Map<String, Value> {
    CLASSES
        .iter()
        .zip(d.by_class)
        .map(|(c, n)| ((*c).to_string(), value(n)))
        .collect()
}

/// `n` events over `seconds` as a rate (0 over no time: two readings in one millisecond).
fn per_s(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn route_json(d: &RouteCounts, seconds: f64) -> Value {
    let status = by_class(d, |n| json!(per_s(n, seconds)));
    let requests: u64 = d.by_class.iter().sum();
    json!({
        "rps": per_s(requests, seconds),
        "p50_ms": quantile_ms(d, 0.5),
        "p99_ms": quantile_ms(d, 0.99),
        "status": status,
    })
}

fn deltas(a: &Sample, b: &Sample) -> (BTreeMap<String, RouteCounts>, RouteCounts) {
    let mut all = RouteCounts::default();
    let routes = b
        .routes
        .iter()
        .map(|(name, now)| {
            let d = route_delta(a.routes.get(name), now);
            add(&mut all, &d);
            (name.clone(), d)
        })
        .collect();
    (routes, all)
}

/// Refusals by the rate limiter between `a` and `b`, per tier.
fn limited_delta<'a>(a: &'a Sample, b: &'a Sample) -> impl Iterator<Item = (String, u64)> + 'a {
    b.limited.iter().map(|(tier, n)| {
        let then = a.limited.get(tier).copied().unwrap_or(0);
        (tier.clone(), n.saturating_sub(then))
    })
}

fn point(a: &Sample, b: &Sample) -> Value {
    let seconds = b.at_ms.saturating_sub(a.at_ms) as f64 / 1000.0;
    let (routes, all) = deltas(a, b);
    let routes: Map<String, Value> = routes
        .iter()
        .map(|(name, d)| (name.clone(), route_json(d, seconds)))
        .collect();
    let limited: Map<String, Value> = limited_delta(a, b)
        .map(|(tier, d)| (tier, json!(per_s(d, seconds))))
        .collect();
    json!({
        "t": b.at_ms / 1000,
        "all": route_json(&all, seconds),
        "routes": routes,
        "limited_by_tier": limited,
    })
}

fn totals(a: &Sample, b: &Sample) -> Value {
    let (routes, _) = deltas(a, b);
    let routes: Map<String, Value> = routes
        .iter()
        .map(|(name, d)| {
            let status = by_class(d, |n| json!(n));
            let value = json!({
                "requests": d.by_class.iter().sum::<u64>(),
                "status": status,
                "p50_ms": quantile_ms(d, 0.5),
                "p99_ms": quantile_ms(d, 0.99),
            });
            (name.clone(), value)
        })
        .collect();
    let limited: Map<String, Value> = limited_delta(a, b).map(|(t, d)| (t, json!(d))).collect();
    json!({ "routes": routes, "limited_by_tier": limited })
}

#[cfg(test)]
mod tests;
