//! The port for what an operator asks of a store: health, sizes, and a
//! clean close.

use std::future::Future;

/// Readiness of one backend, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    /// Backend name (`embedded`, `redis`, `postgres`).
    pub name: &'static str,
    /// `None` when healthy, else what is wrong.
    pub problem: Option<String>,
}

/// What an operator asks of a store: health, sizes, and a clean close.
pub trait StoreHealth: Send + Sync + 'static {
    /// Health of each backend.
    fn health(&self) -> impl Future<Output = Vec<BackendHealth>> + Send;

    /// Sessions stored (when the store can tell cheaply) and apps configured.
    fn sizes(&self) -> impl Future<Output = (Option<u64>, usize)> + Send;

    /// Finishes background work (pending writes) before the process exits.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
