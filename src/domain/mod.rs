//! The rules of wafer: apps, sessions, skeys, and the operations over them.

pub mod app;
pub mod audit;
mod error;
pub mod input;
pub mod lifetime;
mod login_limits;
pub mod ports;
mod service;
pub mod session;
pub mod skey;
pub mod token;
mod token_keeper;
pub mod token_metrics;

pub use error::Error;
pub use service::{LoginOutput, Wafer};
