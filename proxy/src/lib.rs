//! sluice: a programmable API gateway on Pingora.
//!
//! The request pipeline (see `gateway.rs`) runs the stages in `stage/` over a
//! [`ctx::RequestCtx`] that holds one immutable [`snapshot::Snapshot`] of the config.

pub mod access_log;
pub mod admin;
pub mod breaker;
pub mod budget;
pub mod config;
pub mod ctx;
pub mod drain;
pub mod gateway;
pub mod grpc_status;
pub mod header_deadline;
pub mod health_checks;
pub mod ids;
pub mod kafka;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod net;
pub mod own_headers;
pub mod redis_conn;
pub mod reload;
pub mod respond;
pub mod router;
pub mod services;
pub mod snapshot;
pub mod spill;
pub mod stage;
pub mod tls;
pub mod upstream;
