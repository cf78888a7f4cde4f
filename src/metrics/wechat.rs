//! Metrics of the calls to WeChat.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::domain::app::AppId;
use crate::metrics::Metrics;
use crate::metrics::register::{counter, histogram};
use crate::wechat::WechatApi;
use crate::wechat::WechatError;
use crate::wechat::reply::WechatOutcome;

struct Handles {
    /// By API, then by outcome.
    results: Vec<Vec<Counter>>,
    latency: Vec<Histogram>,
}

/// Pre-registered handles for WeChat calls; the default records nothing.
#[derive(Clone, Default)]
pub struct WechatMetrics(Option<Arc<Handles>>);

impl WechatMetrics {
    /// Registers the series on `r`.
    pub fn register(r: &PrometheusRecorder) -> Self {
        let results = WechatApi::ALL
            .iter()
            .map(|api| {
                WechatOutcome::ALL
                    .iter()
                    .map(|o| {
                        counter(
                            r,
                            "wafer_wechat_requests_total",
                            &[("api", api.label()), ("result", o.label())],
                        )
                    })
                    .collect()
            })
            .collect();
        let latency = WechatApi::ALL
            .iter()
            .map(|api| {
                histogram(
                    r,
                    "wafer_wechat_request_duration_seconds",
                    &[("api", api.label())],
                )
            })
            .collect();
        WechatMetrics(Some(Arc::new(Handles { results, latency })))
    }

    /// Records one call to `api`.
    pub fn record(&self, api: WechatApi, result: Result<(), &WechatError>, took: Duration) {
        let Some(h) = &self.0 else { return };
        let outcome = result.err().map_or(WechatOutcome::Ok, WechatError::outcome);
        h.results[api.index()][outcome.index()].increment(1);
        h.latency[api.index()].record(took.as_secs_f64());
    }
}

impl std::fmt::Debug for WechatMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WechatMetrics")
    }
}

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
            refreshes: counter(&metrics.recorder, "wafer_access_token_refreshes_total", &[]),
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
