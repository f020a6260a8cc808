//! One reading of sluice's own request counters, taken from the metrics in this process
//! (not from a Prometheus server), so the dashboard's live pages work without one.

use crate::metrics::Metrics;
use prometheus::core::Collector;
use prometheus::proto::Metric;
use std::collections::BTreeMap;

/// Counters of one route, cumulative since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteCounts {
    /// Responses by status class: 1xx … 5xx (index 0 … 4); `0`/other codes are not counted.
    pub by_class: [u64; 5],
    /// The latency histogram: (upper bound in seconds, cumulative count), ascending.
    pub buckets: Vec<(f64, u64)>,
    /// Requests timed.
    pub timed: u64,
}

/// Attempts sent to one upstream peer, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerCounts {
    /// All attempts.
    pub attempts: u64,
    /// Attempts that did not end `ok` (5xx, connect errors, other errors).
    pub failures: u64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Unix time of the reading, in milliseconds.
    pub at_ms: u64,
    /// Per route.
    pub routes: BTreeMap<String, RouteCounts>,
    /// Requests refused by the rate limiter, per tier (`own` for keys with their own limits).
    pub limited: BTreeMap<String, u64>,
    /// Per (upstream group, peer).
    pub peers: BTreeMap<(String, String), PeerCounts>,
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

fn counts<C: Collector>(collector: &C) -> impl Iterator<Item = Metric> {
    collector
        .collect()
        .into_iter()
        .flat_map(|family| family.get_metric().to_vec())
}

/// Counters are integers kept in an f64 by the metrics library.
fn whole(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

impl Sample {
    /// Reads the counters of `m` now.
    pub fn take(m: &Metrics, at_ms: u64) -> Self {
        let mut s = Sample {
            at_ms,
            ..Sample::default()
        };
        for metric in counts(&m.requests) {
            let class = label(&metric, "status").as_bytes().first().copied();
            let route = s
                .routes
                .entry(label(&metric, "route").to_string())
                .or_default();
            if let Some(c @ b'1'..=b'5') = class {
                route.by_class[usize::from(c - b'1')] += whole(metric.get_counter().get_value());
            }
        }
        for metric in counts(&m.request_duration) {
            let route = s
                .routes
                .entry(label(&metric, "route").to_string())
                .or_default();
            let h = metric.get_histogram();
            route.timed = h.get_sample_count();
            route.buckets = h
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
        }
        for metric in counts(&m.ratelimit_decisions) {
            if label(&metric, "decision") == "limited" {
                *s.limited
                    .entry(label(&metric, "tier").to_string())
                    .or_default() += whole(metric.get_counter().get_value());
            }
        }
        for metric in counts(&m.upstream_requests) {
            let key = (
                label(&metric, "upstream").to_string(),
                label(&metric, "peer").to_string(),
            );
            let n = whole(metric.get_counter().get_value());
            let peer = s.peers.entry(key).or_default();
            peer.attempts += n;
            if label(&metric, "outcome") != "ok" {
                peer.failures += n;
            }
        }
        s
    }
}
