//! The access tokens' series: forced refreshes, and the age of the token
//! each app was last served (a gauge per app, registered as apps appear).

use std::sync::Arc;

use dashmap::DashMap;
use metrics::{Counter, Gauge};

use crate::domain::app::AppId;
use crate::metrics::Metrics;
use crate::metrics::register::counter;

struct TokenHandles {
    refreshes: Counter,
    metrics: Arc<Metrics>,
    ages: DashMap<AppId, Gauge>,
}

/// Handles for the access-token logic; the default records nothing.
#[derive(Clone, Default)]
pub struct TokenMetrics(Option<Arc<TokenHandles>>);

impl TokenMetrics {
    /// Registers the series on `metrics` (the per-app gauges as apps appear).
    pub fn register(metrics: &Arc<Metrics>) -> Self {
        TokenMetrics(Some(Arc::new(TokenHandles {
            refreshes: counter(
                metrics.recorder(),
                "wafer_access_token_refreshes_total",
                &[],
            ),
            metrics: metrics.clone(),
            ages: DashMap::new(),
        })))
    }

    /// Counts one forced refresh.
    pub fn refreshed(&self) {
        if let Some(h) = &self.0 {
            h.refreshes.increment(1);
        }
    }

    /// Sets the age of the token just served for `app`.
    pub fn age(&self, app: AppId, seconds: f64) {
        let Some(h) = &self.0 else { return };
        h.ages
            .entry(app)
            .or_insert_with(|| h.metrics.app_gauge("wafer_access_token_age_seconds", app))
            .set(seconds);
    }
}

impl std::fmt::Debug for TokenMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMetrics")
    }
}
