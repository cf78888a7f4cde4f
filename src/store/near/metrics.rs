//! Metrics of the near cache: hits, misses, invalidations, flushes,
//! slides written, and its size.

use std::sync::Arc;

use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::labels::labelled;
use crate::metrics::register::{counter, gauge};

labelled! {
    /// Why the near cache was emptied (the `reason` of its flush series).
    pub enum FlushReason {
        /// The tracking connection failed or closed.
        Lost => "connection_lost",
        /// The tracking connection came back (invalidations may be missed).
        Reconnect => "reconnect",
        /// The heartbeat found tracking off, or failed.
        Heartbeat => "heartbeat",
        /// More invalidations came than were read in time.
        Lagged => "lagged",
        /// wafer is stopping.
        Close => "close",
        /// A write of this instance to Redis failed (Redis may keep what it
        /// replaced), or the pool that writes is down: copies could outlive a
        /// change this instance acknowledged.
        WriteFailed => "write_failed",
        /// The Redis Cluster's layout changed (a primary joined, left or
        /// took slots): tracking must be proven on the new layout.
        Layout => "layout",
        /// It stood aside: full and mostly missing (see `admission`).
        Aside => "aside",
    }
}

impl FlushReason {
    /// What the operator reads in the log when the cache is emptied for
    /// this reason; `None` when another event says it (stepping aside) or
    /// nothing is wrong (closing).
    fn explained(self) -> Option<&'static str> {
        match self {
            FlushReason::Lost | FlushReason::Reconnect | FlushReason::Lagged => Some(
                "near cache emptied: Redis' tracking of sessions was lost; auths go to Redis \
                 until it is back",
            ),
            FlushReason::Heartbeat | FlushReason::Layout => Some(
                "near cache emptied: Redis' tracking of sessions could not be proven on every \
                 primary; auths go to Redis until it is back",
            ),
            FlushReason::WriteFailed => Some(
                "near cache emptied: a write to Redis failed, or this instance cannot write to \
                 Redis; it serves again once the repair has reached Redis",
            ),
            FlushReason::Close | FlushReason::Aside => None,
        }
    }
}

struct Handles {
    accepted: Counter,
    refused: Counter,
    misses: Counter,
    invalidations: Counter,
    flushes: Vec<Counter>,
    slides_ok: Counter,
    slides_gone: Counter,
    slides_error: Counter,
    entries: Gauge,
    bytes: Gauge,
    fills: Gauge,
    pending: Gauge,
    aside: Gauge,
    bypassed: Counter,
}

/// Pre-registered handles for the near cache; the default records nothing.
#[derive(Clone, Default)]
pub struct NearMetrics(Option<Arc<Handles>>);

impl NearMetrics {
    /// Registers the series on `r`.
    pub fn register(r: &PrometheusRecorder) -> Self {
        let hits = |answer| counter(r, "wafer_near_cache_hits_total", &[("answer", answer)]);
        let slides = |result| counter(r, "wafer_near_cache_slides_total", &[("result", result)]);
        NearMetrics(Some(Arc::new(Handles {
            accepted: hits("accepted"),
            refused: hits("refused"),
            misses: counter(r, "wafer_near_cache_misses_total", &[]),
            invalidations: counter(r, "wafer_near_cache_invalidations_total", &[]),
            flushes: FlushReason::ALL
                .iter()
                .map(|reason| {
                    counter(
                        r,
                        "wafer_near_cache_flushes_total",
                        &[("reason", reason.label())],
                    )
                })
                .collect(),
            slides_ok: slides("ok"),
            slides_gone: slides("gone"),
            slides_error: slides("error"),
            entries: gauge(r, "wafer_near_cache_entries", &[]),
            bytes: gauge(r, "wafer_near_cache_bytes", &[]),
            fills: gauge(r, "wafer_near_cache_fills_in_flight", &[]),
            pending: gauge(r, "wafer_near_cache_slides_pending", &[]),
            aside: gauge(r, "wafer_near_cache_aside", &[]),
            bypassed: counter(r, "wafer_near_cache_bypassed_total", &[]),
        })))
    }

    /// An auth answered by the cache: `accepted` or refused.
    pub fn hit(&self, accepted: bool) {
        if let Some(h) = &self.0 {
            if accepted { &h.accepted } else { &h.refused }.increment(1);
        }
    }

    /// An auth sent on to Redis.
    pub fn miss(&self) {
        if let Some(h) = &self.0 {
            h.misses.increment(1);
        }
    }

    /// A change reported by Redis.
    pub fn invalidated(&self) {
        if let Some(h) = &self.0 {
            h.invalidations.increment(1);
        }
    }

    /// The cache was emptied for `reason`: counted, and logged with what
    /// it means for auths (one event, one call).
    pub fn flushed(&self, reason: FlushReason) {
        if let Some(h) = &self.0 {
            h.flushes[reason.index()].increment(1);
        }
        if let Some(message) = reason.explained() {
            tracing::warn!(reason = reason.label(), "{message}");
        }
    }

    /// Slides written: `ok` written (or not needed), `gone` sessions Redis
    /// no longer holds, `error` failed.
    pub fn slides(&self, ok: u64, gone: u64, error: u64) {
        if let Some(h) = &self.0 {
            h.slides_ok.increment(ok);
            h.slides_gone.increment(gone);
            h.slides_error.increment(error);
        }
    }

    /// It stepped aside (`aside`) or back, judging by `hit_ratio` (the
    /// window's, or the shadow's estimate): the gauge set and the line
    /// logged in one call.
    pub fn aside(&self, aside: bool, hit_ratio: f64) {
        if let Some(h) = &self.0 {
            h.aside.set(if aside { 1.0 } else { 0.0 });
        }
        if aside {
            tracing::warn!(
                hit_ratio,
                "near cache full and mostly missing: emptied, auths go straight to Redis as \
                 without it until a sample of the sessions in use says they would fit"
            );
        } else {
            tracing::info!(estimated_hit_ratio = hit_ratio, "near cache fills again");
        }
    }

    /// An auth sent straight to Redis, past the cache (it stands aside).
    pub fn bypassed(&self) {
        if let Some(h) = &self.0 {
            h.bypassed.increment(1);
        }
    }

    /// The cache's size: its copies, their bytes, the fills waiting on
    /// Redis and the slides held back (both bounded; a growing value is a
    /// leak or an outage).
    pub fn sizes(&self, s: &Sizes) {
        if let Some(h) = &self.0 {
            h.entries.set(s.entries as f64);
            h.bytes.set(s.bytes as f64);
            h.fills.set(s.fills as f64);
            h.pending.set(s.pending as f64);
        }
    }
}

/// What [`NearMetrics::sizes`] samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Copies held.
    pub entries: u64,
    /// Their bytes.
    pub bytes: i64,
    /// Fills waiting on Redis (tickets out).
    pub fills: usize,
    /// Slides held back, not yet written.
    pub pending: usize,
}
