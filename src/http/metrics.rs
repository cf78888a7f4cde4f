//! The request series: one counter per route and outcome (`ok` or an
//! error code) and one latency histogram per route, registered up front so
//! that recording is an index and an atomic add.

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::error::ErrorCode;
use crate::http::router::Route;
use crate::metrics::register::{counter, histogram};

/// Outcomes of a request: `ok` and every error code.
const OUTCOMES: usize = 1 + ErrorCode::ALL.len();

struct RouteMetrics {
    outcomes: [Counter; OUTCOMES],
    latency: Histogram,
}

/// Handles of every route's series.
pub struct RequestMetrics {
    routes: Vec<RouteMetrics>,
}

impl RequestMetrics {
    /// Registers every route's series on `recorder`.
    pub fn register(recorder: &PrometheusRecorder) -> Self {
        let routes = Route::ALL
            .iter()
            .map(|route| {
                let route = route.label();
                let by = |outcome| {
                    counter(
                        recorder,
                        "wafer_requests_total",
                        &[("route", route), ("outcome", outcome)],
                    )
                };
                let mut outcomes = Vec::with_capacity(OUTCOMES);
                outcomes.push(by("ok"));
                outcomes.extend(ErrorCode::ALL.iter().map(|c| by(c.as_str())));
                RouteMetrics {
                    outcomes: outcomes
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("OUTCOMES entries")),
                    latency: histogram(
                        recorder,
                        "wafer_request_duration_seconds",
                        &[("route", route)],
                    ),
                }
            })
            .collect();
        RequestMetrics { routes }
    }

    /// Records one answered request: route, outcome (`None` = ok) and
    /// latency in seconds.
    pub fn record(&self, route: Route, outcome: Option<ErrorCode>, seconds: f64) {
        if let Some(r) = self.routes.get(route.index()) {
            let i = outcome.map_or(0, |c| 1 + c.index());
            r.outcomes[i].increment(1);
            r.latency.record(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn requests_are_counted_by_route_and_outcome() {
        let m = Metrics::new();
        let requests = RequestMetrics::register(m.recorder());
        requests.record(Route::Auth, None, 0.0003);
        requests.record(Route::Auth, Some(ErrorCode::SessionInvalid), 0.0002);
        requests.record(Route::Auth, Some(ErrorCode::SessionInvalid), 0.0002);
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
    }
}
