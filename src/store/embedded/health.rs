//! The embedded store's health: always up, sized by what it holds.

use super::EmbeddedStore;
use crate::store::{Backend, BackendHealth, StoreHealth};

impl StoreHealth for EmbeddedStore {
    async fn sizes(&self) -> (Option<u64>, usize) {
        (Some(self.sessions.len() as u64), self.apps.load().len())
    }

    async fn health(&self) -> Vec<BackendHealth> {
        vec![BackendHealth {
            name: Backend::Embedded.label(),
            problem: None,
        }]
    }
}
