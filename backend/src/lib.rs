//! The services behind the sluice gateway.
//!
//! - [`todo`]: the todo REST service on PostgreSQL.

pub mod db;
pub mod error;
pub mod todo;
