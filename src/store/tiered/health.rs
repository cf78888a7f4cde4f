//! The tiered store's health, sizes and clean close.

use std::time::Duration;

use super::TieredStore;
use crate::store::{Backend, BackendHealth, Cause, StoreError, StoreHealth, StoreResult};

/// Longest a health check of one backend may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

impl StoreHealth for TieredStore {
    async fn health(&self) -> Vec<BackendHealth> {
        // Readiness probes must answer fast even when a store hangs.
        let (redis, pg) = tokio::join!(
            bounded_check(Backend::Redis, self.hot.redis.ping()),
            bounded_check(Backend::Postgres, self.record.pg.ping())
        );
        vec![
            BackendHealth {
                name: Backend::Redis.label(),
                problem: redis.err().map(|e| e.to_string()),
            },
            BackendHealth {
                name: Backend::Postgres.label(),
                problem: pg.err().map(|e| e.to_string()),
            },
        ]
    }

    async fn sizes(&self) -> (Option<u64>, usize) {
        // The near cache's gauges too, fresh for the scrape (the heartbeat
        // also samples them, but waits on Redis).
        if let Some(near) = &self.near {
            near.cache().sizes();
        }
        (
            self.record.pg.session_estimate().await.ok(),
            self.apps.len(),
        )
    }

    async fn close(&self) {
        if let Some(near) = &self.near {
            near.close().await;
        }
        self.record.flush_visits().await;
        self.hot.repair().await;
        self.hot.redis.quit().await;
    }
}

/// `check`, or a timeout after [`HEALTH_TIMEOUT`]: readiness probes
/// answer fast even when a store hangs.
async fn bounded_check(
    backend: Backend,
    check: impl std::future::Future<Output = StoreResult<()>>,
) -> StoreResult<()> {
    tokio::time::timeout(HEALTH_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable(backend, Cause::Timeout)))
}
