//! Prometheus metrics. Each server owns its recorder (no global state), and
//! the per-request handles are registered once at start, so recording on
//! the hot path is an index into a table and an atomic add.

use metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::ErrorCode;
use crate::http::router::LABELS;

/// Latency buckets, seconds: resolve 100 µs to 1 s (and a little beyond).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
];

/// Outcomes of a request: `ok` and every error code.
const OUTCOMES: usize = 1 + ErrorCode::ALL.len();

struct RouteMetrics {
    outcomes: [Counter; OUTCOMES],
    latency: Histogram,
}

/// wafer's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    routes: Vec<RouteMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

impl Metrics {
    /// A fresh registry with every request series registered.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        describe(&recorder);
        let routes = LABELS
            .iter()
            .map(|route| {
                let counter = |outcome: &'static str| {
                    let key = Key::from_parts(
                        "wafer_requests_total",
                        vec![
                            Label::from_static_parts("route", route),
                            Label::from_static_parts("outcome", outcome),
                        ],
                    );
                    recorder.register_counter(&key, &meta())
                };
                let mut outcomes = Vec::with_capacity(OUTCOMES);
                outcomes.push(counter("ok"));
                outcomes.extend(ErrorCode::ALL.iter().map(|c| counter(c.as_str())));
                let latency = recorder.register_histogram(
                    &Key::from_parts(
                        "wafer_request_duration_seconds",
                        vec![Label::from_static_parts("route", route)],
                    ),
                    &meta(),
                );
                RouteMetrics {
                    outcomes: outcomes
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("OUTCOMES entries")),
                    latency,
                }
            })
            .collect();
        let build = recorder.register_gauge(
            &Key::from_parts(
                "wafer_build_info",
                vec![Label::from_static_parts(
                    "version",
                    env!("CARGO_PKG_VERSION"),
                )],
            ),
            &meta(),
        );
        build.set(1.0);
        Metrics {
            recorder,
            handle,
            routes,
        }
    }

    /// Records one answered request: route index (see `router::LABELS`),
    /// outcome (`None` = ok) and latency in seconds.
    pub fn record_request(&self, route: usize, outcome: Option<ErrorCode>, seconds: f64) {
        if let Some(r) = self.routes.get(route) {
            let i = outcome.map_or(0, |c| 1 + c.index());
            r.outcomes[i].increment(1);
            r.latency.record(seconds);
        }
    }

    /// The registry as Prometheus text.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram buffers; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The recorder, for other layers to register their own series.
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.recorder
    }
}

fn describe(r: &PrometheusRecorder) {
    let d = |name: &'static str, help: &'static str| {
        r.describe_counter(
            KeyName::from_const_str(name),
            None,
            SharedString::const_str(help),
        );
    };
    d(
        "wafer_requests_total",
        "HTTP requests answered, by route template and outcome (`ok` or the API error code).",
    );
    r.describe_histogram(
        KeyName::from_const_str("wafer_request_duration_seconds"),
        Some(metrics::Unit::Seconds),
        SharedString::const_str("Time from request received to response ready, by route template."),
    );
    r.describe_gauge(
        KeyName::from_const_str("wafer_build_info"),
        None,
        SharedString::const_str("Always 1; the labels say which wafer version is running."),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_outcome() {
        let m = Metrics::new();
        m.record_request(2, None, 0.0003);
        m.record_request(2, Some(ErrorCode::SessionInvalid), 0.0002);
        m.record_request(2, Some(ErrorCode::SessionInvalid), 0.0002);
        m.upkeep();
        let text = m.render();
        assert!(
            text.contains(
                r#"wafer_requests_total{route="/mina/auth",outcome="session_invalid"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"wafer_requests_total{route="/mina/auth",outcome="ok"} 1"#));
        assert!(text.contains("# HELP wafer_requests_total"));
        assert!(text.contains("wafer_request_duration_seconds_bucket"));
        assert!(text.contains("wafer_build_info"));
    }
}
