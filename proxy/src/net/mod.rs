//! Network address helpers shared by stages and config.

pub mod cidr;
