//! Metrics of the near cache: hits, misses, invalidations, flushes,
//! slides written, and its size.

use std::sync::Arc;

use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::metrics::register::{counter, gauge};

/// Why the near cache was emptied (the `reason` of its flush metric).
pub mod flush_reason {
    /// The tracking connection failed or closed.
    pub const LOST: &str = "connection_lost";
    /// The tracking connection came back (invalidations may be missed).
    pub const RECONNECT: &str = "reconnect";
    /// The heartbeat found tracking off, or failed.
    pub const HEARTBEAT: &str = "heartbeat";
    /// More invalidations came than were read in time.
    pub const LAGGED: &str = "lagged";
    /// wafer is stopping.
    pub const CLOSE: &str = "close";
    /// A write of this instance to Redis failed (Redis may keep what it
    /// replaced), or the pool that writes is down: copies could outlive a
    /// change this instance acknowledged.
    pub const WRITE_FAILED: &str = "write_failed";
    /// The Redis Cluster's layout changed (a primary joined, left or
    /// took slots): tracking must be proven on the new layout.
    pub const LAYOUT: &str = "layout";
    /// It stood aside: full and mostly missing (see `admission`).
    pub const ASIDE: &str = "aside";
    /// Every reason, for registering the series.
    pub const ALL: [&str; 8] = [
        LOST,
        RECONNECT,
        HEARTBEAT,
        LAGGED,
        CLOSE,
        WRITE_FAILED,
        LAYOUT,
        ASIDE,
    ];
}

struct Handles {
    accepted: Counter,
    refused: Counter,
    misses: Counter,
    invalidations: Counter,
    flushes: Vec<(&'static str, Counter)>,
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
            flushes: flush_reason::ALL
                .iter()
                .map(|reason| {
                    (
                        *reason,
                        counter(r, "wafer_near_cache_flushes_total", &[("reason", reason)]),
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

    /// The cache was emptied for `reason`.
    pub fn flushed(&self, reason: &str) {
        if let Some(h) = &self.0 {
            if let Some((_, c)) = h.flushes.iter().find(|(r, _)| *r == reason) {
                c.increment(1);
            }
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

    /// The cache stepped aside (`true`: its misses no longer fill it) or
    /// back.
    pub fn aside(&self, aside: bool) {
        if let Some(h) = &self.0 {
            h.aside.set(if aside { 1.0 } else { 0.0 });
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
