//! Metrics of the calls to WeChat.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::metrics::register::{counter, histogram};
use crate::wechat::WechatError;
use crate::wechat::reply::WechatOutcome;

struct Handles {
    results: Vec<Counter>,
    latency: Histogram,
}

/// Pre-registered handles for WeChat calls; the default records nothing.
#[derive(Clone, Default)]
pub struct WechatMetrics(Option<Arc<Handles>>);

impl WechatMetrics {
    /// Registers the series on `r`.
    pub fn register(r: &PrometheusRecorder) -> Self {
        let results = WechatOutcome::ALL
            .iter()
            .map(|o| counter(r, "wafer_wechat_requests_total", &[("result", o.label())]))
            .collect();
        let latency = histogram(r, "wafer_wechat_request_duration_seconds", &[]);
        WechatMetrics(Some(Arc::new(Handles { results, latency })))
    }

    /// Records one call.
    pub fn record(&self, result: Result<(), &WechatError>, took: Duration) {
        let Some(h) = &self.0 else { return };
        let outcome = result.err().map_or(WechatOutcome::Ok, WechatError::outcome);
        h.results[outcome.index()].increment(1);
        h.latency.record(took.as_secs_f64());
    }
}

impl std::fmt::Debug for WechatMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WechatMetrics")
    }
}
