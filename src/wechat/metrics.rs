//! The series of the calls to WeChat, by API and result, registered up
//! front so that recording one is an index and an atomic add.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;

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
