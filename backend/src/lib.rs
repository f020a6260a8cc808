//! The services behind the sluice gateway.
//!
//! - [`todo`]: the todo REST service on PostgreSQL.
//! - [`payments`]: the payments service (Rinha de Backend 2025 API).
//! - [`processor`]: a payment-processor simulator (the contest's processor API).
//! - [`testupstream`]: a controllable upstream for resilience tests.

pub mod db;
pub mod error;
pub mod payments;
pub mod processor;
pub mod rinha;
pub mod service_metrics;
pub mod shutdown;
pub mod start;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod testupstream;
pub mod todo;
