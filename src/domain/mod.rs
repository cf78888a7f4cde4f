//! The rules of wafer: apps, sessions, skeys, and the operations over them.

pub mod app;
pub mod error;
pub mod input;
pub mod service;
pub mod session;
pub mod skey;

pub use error::Error;
pub use service::Wafer;
