//! The services behind the sluice gateway.
//!
//! - [`todo`]: the todo REST service on PostgreSQL.
//! - [`testupstream`]: a controllable upstream for resilience tests.

pub mod db;
pub mod error;
pub mod telemetry;
pub mod testupstream;
pub mod todo;
