//! Metrics of the stores: operations by backend, read-throughs, and the
//! write-behind buffer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;

pub use crate::domain::ports::Backend;
use crate::domain::ports::StoreResult;
use crate::metrics::register::{counter, gauge, histogram};
use crate::store::near::metrics::NearMetrics;

impl Backend {
    /// The operations this backend performs (the series registered for it).
    fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Backend::Embedded => &[Auth, Login, Logout, Revoke, ListSessions, Phone],
            Backend::Redis => &[
                Auth, Put, Tombstone, Evict, Index, Load, Ping, Token, Slide, Track,
            ],
            Backend::Postgres => &[
                Login,
                Phone,
                Audit,
                Load,
                Delete,
                ListSessions,
                Apps,
                AppWrite,
                RecordVisits,
                Purge,
                Count,
                Ping,
                Outbox,
            ],
        }
    }
}

crate::labels::labelled! {
    /// Why an auth was served from PostgreSQL (the `reason` of the
    /// read-through series).
    pub enum ReadThrough {
        /// Redis did not hold the session (then Redis is filled again).
        Miss => "miss",
        /// Redis was down or failing.
        RedisDown => "redis_down",
    }
}

crate::labels::labelled! {
    /// A store operation.
    pub enum Op {
        /// Check (and slide) a session.
        Auth => "auth",
        /// Record a login.
        Login => "login",
        /// Remove a session by its owner.
        Logout => "logout",
        /// Remove a session by an admin.
        Revoke => "revoke",
        /// List an app's sessions.
        ListSessions => "list_sessions",
        /// Cache a session in Redis.
        Put => "put",
        /// Replace a session by a tombstone.
        Tombstone => "tombstone",
        /// Drop a possibly stale cached session.
        Evict => "evict",
        /// Read or write the open_id index.
        Index => "index",
        /// Health check.
        Ping => "ping",
        /// Read one session record.
        Load => "load",
        /// Delete a session record.
        Delete => "delete",
        /// Read the apps.
        Apps => "apps",
        /// Create, change or delete an app.
        AppWrite => "app_write",
        /// Write a batch of last visits.
        RecordVisits => "record_visits",
        /// Delete expired sessions.
        Purge => "purge",
        /// Estimate the number of sessions.
        Count => "count",
        /// Read or mark the session changes Redis has not been told of.
        Outbox => "outbox",
        /// Store a session's phone number.
        Phone => "phone",
        /// Read, share or lease an app's access token.
        Token => "token",
        /// Write or read the audit trail.
        Audit => "audit",
        /// Write the near cache's held-back slides (one pipeline).
        Slide => "slide",
        /// Fetch a near-cache copy in use again after a change (no write).
        Peek => "peek",
        /// Turn on or check the near cache's tracking.
        Track => "track",
    }
}

struct OpHandles {
    ok: Counter,
    error: Counter,
    latency: Histogram,
}

struct Handles {
    // [backend][op]; None where a backend does not perform an op.
    ops: Vec<Vec<Option<OpHandles>>>,
    read_through: Vec<Counter>,
    pending: Gauge,
    flush_sessions: Histogram,
    flush_latency: Histogram,
    flush_failures: Counter,
    visits_dropped: Counter,
    near: NearMetrics,
}

/// Pre-registered handles for store metrics; the default records nothing.
#[derive(Clone, Default)]
pub struct StoreMetrics(Option<Arc<Handles>>);

impl StoreMetrics {
    /// Registers the series on `r`.
    pub fn register(r: &PrometheusRecorder) -> Self {
        let ops = Backend::ALL
            .iter()
            .map(|b| {
                let mut row: Vec<Option<OpHandles>> = (0..Op::ALL.len()).map(|_| None).collect();
                for op in b.ops() {
                    let labels = |result| {
                        [
                            ("backend", b.label()),
                            ("op", op.label()),
                            ("result", result),
                        ]
                    };
                    row[op.index()] = Some(OpHandles {
                        ok: counter(r, "wafer_store_operations_total", &labels("ok")),
                        error: counter(r, "wafer_store_operations_total", &labels("error")),
                        latency: histogram(
                            r,
                            "wafer_store_operation_duration_seconds",
                            &[("backend", b.label()), ("op", op.label())],
                        ),
                    });
                }
                row
            })
            .collect();
        StoreMetrics(Some(Arc::new(Handles {
            ops,
            read_through: ReadThrough::ALL
                .iter()
                .map(|why| counter(r, "wafer_store_read_through_total", &[("reason", why.label())]))
                .collect(),
            pending: gauge(r, "wafer_write_behind_pending", &[]),
            flush_sessions: histogram(r, "wafer_write_behind_flush_sessions", &[]),
            flush_latency: histogram(r, "wafer_write_behind_flush_duration_seconds", &[]),
            flush_failures: counter(r, "wafer_write_behind_flush_failures_total", &[]),
            visits_dropped: counter(r, "wafer_write_behind_dropped_total", &[]),
            near: NearMetrics::register(r),
        })))
    }

    /// Records one operation.
    pub fn record(&self, backend: Backend, op: Op, ok: bool, took: Duration) {
        let Some(h) = &self.0 else { return };
        if let Some(Some(m)) = h.ops[backend.index()].get(op.index()) {
            if ok { &m.ok } else { &m.error }.increment(1);
            m.latency.record(took.as_secs_f64());
        }
    }

    /// Runs `work` and records it as one operation.
    pub async fn observe<T>(
        &self,
        backend: Backend,
        op: Op,
        work: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let out = work.await;
        self.record(backend, op, out.is_ok(), started.elapsed());
        out
    }

    /// Counts an auth served from PostgreSQL, and why.
    pub fn read_through(&self, why: ReadThrough) {
        if let Some(h) = &self.0 {
            h.read_through[why.index()].increment(1);
        }
    }

    /// A write-behind flush ended with `written` (sessions, or why it
    /// failed) after `took`, leaving `pending` sessions to write: recorded
    /// and logged in one call. An empty flush is no flush: it would only
    /// pull the histograms towards zero; the pending gauge is set every
    /// time, so it falls back to 0 once PostgreSQL has caught up.
    /// `dropped` visits were not queued since the last flush (the queue
    /// was full).
    pub fn visits_flushed(
        &self,
        written: &StoreResult<usize>,
        took: Duration,
        pending: usize,
        dropped: u64,
    ) {
        if dropped > 0 {
            tracing::warn!(
                dropped,
                pending,
                "the write-behind is full: last visits dropped (their records lag Redis)"
            );
        }
        if let Some(h) = &self.0 {
            h.visits_dropped.increment(dropped);
            match written {
                Ok(0) => {}
                Ok(n) => {
                    h.flush_sessions.record(*n as f64);
                    h.flush_latency.record(took.as_secs_f64());
                }
                Err(_) => {
                    h.flush_failures.increment(1);
                    h.flush_latency.record(took.as_secs_f64());
                }
            }
            h.pending.set(pending as f64);
        }
        match written {
            Ok(0) => {}
            Ok(n) => tracing::trace!(sessions = n, "flushed last visits"),
            Err(e) => tracing::warn!(error = %e, pending, "last-visit flush failed; will retry"),
        }
    }

    /// Handles for the near cache.
    pub fn near(&self) -> NearMetrics {
        self.0.as_ref().map(|h| h.near.clone()).unwrap_or_default()
    }

}

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreMetrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn a_flush_counts_the_visits_the_full_queue_dropped() {
        let m = Metrics::new();
        let store = StoreMetrics::register(m.recorder());
        let series = "wafer_write_behind_dropped_total";
        let value = |text: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{series} ")))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        store.visits_flushed(&Ok(5), Duration::from_millis(1), 0, 0);
        assert_eq!(value(&m.render()), Some(0), "registered, unmoved");
        store.visits_flushed(&Ok(0), Duration::from_millis(1), 7, 3);
        store.visits_flushed(&Ok(2), Duration::from_millis(1), 7, 4);
        assert_eq!(value(&m.render()), Some(7));
    }
}
