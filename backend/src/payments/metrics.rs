//! Prometheus metrics of a payments instance (prefix `payments_`), on `GET /metrics`.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use std::sync::OnceLock;

/// Every metric the payments service exports.
pub struct Metrics {
    /// `payments_accepted_total{result}`: `new`, `duplicate`, `unavailable`.
    pub accepted: IntCounterVec,
    /// `payments_processor_calls_total{processor,outcome}`: `paid`, `already_paid`,
    /// `not_paid`, `unknown`, `refused`.
    pub processor_calls: IntCounterVec,
    /// `payments_paid_total{processor}`: payments recorded in the ledger.
    pub paid: IntCounterVec,
    /// `payments_taken_over_total`: payments this instance dropped because another took
    /// them over while it was silent (its fencing token was superseded).
    pub taken_over: IntCounter,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    c
}

impl Metrics {
    fn new() -> Self {
        // The process-wide registry: `/metrics` shows these next to the process, HTTP and
        // database metrics of every service.
        let registry = crate::service_metrics::registry().clone();
        let m = Self {
            accepted: counter(
                &registry,
                "payments_accepted_total",
                "POST /payments by result.",
                &["result"],
            ),
            processor_calls: counter(
                &registry,
                "payments_processor_calls_total",
                "Calls to the payment processors by outcome.",
                &["processor", "outcome"],
            ),
            paid: counter(
                &registry,
                "payments_paid_total",
                "Payments confirmed and recorded, by processor.",
                &["processor"],
            ),
            taken_over: {
                let c = IntCounter::new(
                    "payments_taken_over_total",
                    "Payments dropped because another instance took them over.",
                )
                .unwrap_or_else(|e| panic!("metric payments_taken_over_total: {e}"));
                registry
                    .register(Box::new(c.clone()))
                    .unwrap_or_else(|e| panic!("metric payments_taken_over_total: {e}"));
                c
            },
        };
        // Every label value starts at 0, so a rate over them reads 0 before the first
        // payment instead of "no data" (dashboards, alerts).
        for result in ["new", "duplicate", "unavailable"] {
            m.accepted.with_label_values(&[result]);
        }
        for processor in ["default", "fallback"] {
            m.paid.with_label_values(&[processor]);
            for outcome in ["paid", "already_paid", "not_paid", "unknown", "refused"] {
                m.processor_calls.with_label_values(&[processor, outcome]);
            }
        }
        m
    }
}
