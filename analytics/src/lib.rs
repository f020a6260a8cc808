//! The analytics service: a Kafka consumer-group member that folds sluice's request
//! events into per-minute aggregates in PostgreSQL (schema `analytics`), counting each
//! event exactly once, and an HTTP API that answers usage questions per key, route and
//! time.

pub mod aggregate;
pub mod api;
pub mod consumer;
pub mod histogram;
pub mod progress;
pub mod store;
pub mod topic;
