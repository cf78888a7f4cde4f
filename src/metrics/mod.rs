//! Prometheus metrics. Each server owns its recorder (no global state), and
//! the per-request handles are registered once at start, so recording on
//! the hot path is an index into a table and an atomic add.

pub mod register;

use metrics::{Gauge, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use register::gauge;

/// Latency buckets, seconds: resolve 100 µs to 1 s (and a little beyond).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
];

/// Buckets of the write-behind batch size (sessions, not seconds).
const BATCH_BUCKETS: [f64; 8] = [
    1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0,
];

/// The commit this binary was built from (see `build.rs`).
pub const GIT_COMMIT: &str = env!("WAFER_GIT_COMMIT");

/// wafer's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    sessions_stored: Gauge,
    apps_configured: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn build_recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("wafer_write_behind_flush_sessions".into()),
                &BATCH_BUCKETS,
            )
        })
        .map(PrometheusBuilder::build_recorder)
        .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder())
}

impl Metrics {
    /// A fresh registry with every request series registered.
    pub fn new() -> Self {
        let recorder = build_recorder();
        let handle = recorder.handle();
        register::describe_all(&recorder);
        gauge(
            &recorder,
            "wafer_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", GIT_COMMIT),
            ],
        )
        .set(1.0);
        let sessions_stored = gauge(&recorder, "wafer_sessions_stored", &[]);
        let apps_configured = gauge(&recorder, "wafer_apps_configured", &[]);
        Metrics {
            recorder,
            handle,
            sessions_stored,
            apps_configured,
        }
    }

    /// Sets the sampled store sizes.
    pub fn set_store_sizes(&self, sessions: Option<u64>, apps: usize) {
        if let Some(n) = sessions {
            self.sessions_stored.set(n as f64);
        }
        self.apps_configured.set(apps as f64);
    }

    /// The recorder, for the parts that register their own series beside
    /// the code that records them (`http/metrics.rs`, `wechat/metrics.rs`,
    /// `store/metrics.rs`, `store/near/metrics.rs`, the access tokens').
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.recorder
    }

    /// A gauge of one app (its numeric id as label `app`), registered on
    /// first use: apps come and go while wafer runs.
    pub(crate) fn app_gauge(&self, name: &'static str, app: i64) -> Gauge {
        self.recorder.register_gauge(
            &metrics::Key::from_parts(name, vec![metrics::Label::new("app", app.to_string())]),
            &register::meta(),
        )
    }

    /// The registry as Prometheus text.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram buffers; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_and_the_sizes_are_exported() {
        let m = Metrics::new();
        m.set_store_sizes(Some(42), 3);
        let text = m.render();
        assert!(text.contains("wafer_build_info"), "{text}");
        assert!(text.contains("wafer_sessions_stored 42"), "{text}");
        assert!(text.contains("wafer_apps_configured 3"), "{text}");
    }
}
