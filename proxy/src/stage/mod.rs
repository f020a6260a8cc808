//! The request pipeline's stages, one module each, called in order from `gateway.rs`.

pub mod auth;
pub mod hedge;
pub mod latency;
pub mod ratelimit;
pub mod route;
