//! Registering series on wafer's recorder once, at start, so that the hot
//! path only touches pre-resolved handles (no label lookup, no allocation).

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::PrometheusRecorder;

pub(crate) fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::from_static_parts(k, v))
            .collect::<Vec<_>>(),
    )
}

/// A counter with these static labels.
pub(crate) fn counter(
    r: &PrometheusRecorder,
    name: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Counter {
    r.register_counter(&key(name, labels), &meta())
}

/// A histogram with these static labels.
pub(crate) fn histogram(
    r: &PrometheusRecorder,
    name: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Histogram {
    r.register_histogram(&key(name, labels), &meta())
}

/// A gauge with these static labels.
pub(crate) fn gauge(
    r: &PrometheusRecorder,
    name: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Gauge {
    r.register_gauge(&key(name, labels), &meta())
}

/// The kind of a series, for its `# HELP`/`# TYPE` lines.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Distribution, in seconds unless the name says otherwise.
    Histogram,
}

/// Every series wafer exports: name, kind, help. The dashboard test checks
/// the dashboard's queries against this list.
pub const SERIES: &[(&str, Kind, &str)] = &[
    (
        "wafer_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route template and outcome (`ok` or the API error code).",
    ),
    (
        "wafer_request_duration_seconds",
        Kind::Histogram,
        "Time from request received to response ready, by route template.",
    ),
    (
        "wafer_wechat_requests_total",
        Kind::Counter,
        "Calls to WeChat, by api (jscode2session, stable_token, phone, checksession) and \
         result (ok, code_rejected, rate_limited, app_credentials, token_invalid, errcode, \
         http_error, malformed, unreachable, timeout). api=\"stable_token\" counts access \
         token fetches.",
    ),
    (
        "wafer_wechat_request_duration_seconds",
        Kind::Histogram,
        "Time of one call to WeChat, by api, whatever its result.",
    ),
    (
        "wafer_access_token_refreshes_total",
        Kind::Counter,
        "Forced refreshes of an app's access token (after WeChat called it invalid), by this instance.",
    ),
    (
        "wafer_access_token_age_seconds",
        Kind::Gauge,
        "Age of the access token this instance last served, by app id (set when it serves one).",
    ),
    (
        "wafer_store_operations_total",
        Kind::Counter,
        "Store operations, by backend (embedded, redis, postgres), operation and result (ok, error).",
    ),
    (
        "wafer_store_operation_duration_seconds",
        Kind::Histogram,
        "Time of one store operation, by backend and operation.",
    ),
    (
        "wafer_store_read_through_total",
        Kind::Counter,
        "Auths served from PostgreSQL: reason `miss` (not in Redis, then repopulated) or \
         `redis_down` (Redis unreachable or failing).",
    ),
    (
        "wafer_near_cache_hits_total",
        Kind::Counter,
        "Auths answered by the near cache without Redis (tiered store): answer `accepted`, or \
         `refused` (the cached session names another app or skey).",
    ),
    (
        "wafer_near_cache_misses_total",
        Kind::Counter,
        "Auths the near cache sent to Redis: no copy, or a copy it was unsure of (expired by \
         its own times, slides behind). Hit ratio: hits / (hits + misses).",
    ),
    (
        "wafer_near_cache_invalidations_total",
        Kind::Counter,
        "Session changes Redis reported to the near cache (re-login, logout, revoke, a phone \
         number, the session hash extended about once per quarter session; slides are not \
         reported); each drops the cached copy.",
    ),
    (
        "wafer_near_cache_flushes_total",
        Kind::Counter,
        "Times the near cache was emptied, by reason (`connection_lost`, `reconnect`, \
         `heartbeat`: tracking found off or not answering, `lagged`: invalidations came faster \
         than they were read, `close`).",
    ),
    (
        "wafer_near_cache_slides_total",
        Kind::Counter,
        "Slides the near cache wrote to Redis (result `ok`, `gone`: the session had ended \
         there, `error`: kept for the next round).",
    ),
    (
        "wafer_near_cache_entries",
        Kind::Gauge,
        "Sessions in the near cache (sampled every heartbeat and at each scrape).",
    ),
    (
        "wafer_near_cache_bytes",
        Kind::Gauge,
        "Estimated bytes of the sessions in the near cache (sampled every heartbeat and at each scrape).",
    ),
    (
        "wafer_near_cache_fills_in_flight",
        Kind::Gauge,
        "Near-cache fills waiting on Redis (one per auth of a session not held; given back when the auth ends, answered or cancelled).",
    ),
    (
        "wafer_near_cache_aside",
        Kind::Gauge,
        "1 while the near cache stands aside: it was full and most lookups of a window missed, so it emptied and every auth goes straight to Redis as without it, until a shadow of a sample of the sessions in use estimates a hit ratio of 0.75; 0 while it serves and fills.",
    ),
    (
        "wafer_near_cache_bypassed_total",
        Kind::Counter,
        "Auths sent straight to Redis past the near cache because it stood aside (one Redis call, as without the cache).",
    ),
    (
        "wafer_near_cache_slides_pending",
        Kind::Gauge,
        "Visits the near cache holds back for Redis, one per session at most and never more than the cache's entry limit (grows while Redis is away).",
    ),
    (
        "wafer_write_behind_pending",
        Kind::Gauge,
        "Sessions whose last visit still waits to be written to PostgreSQL, as of the last write-behind flush (at most a second ago; tiered store). Grows while PostgreSQL fails, back to 0 once it catches up.",
    ),
    (
        "wafer_write_behind_flush_sessions",
        Kind::Histogram,
        "Sessions written per write-behind flush (a count, not seconds).",
    ),
    (
        "wafer_write_behind_flush_duration_seconds",
        Kind::Histogram,
        "Time of one write-behind flush.",
    ),
    (
        "wafer_write_behind_flush_failures_total",
        Kind::Counter,
        "Write-behind flushes that failed (their visits are kept and retried).",
    ),
    (
        "wafer_write_behind_dropped_total",
        Kind::Counter,
        "Last visits not queued for PostgreSQL because the write-behind was full (PostgreSQL away for long): their sessions' records lag Redis until a later visit is written.",
    ),
    (
        "wafer_sessions_stored",
        Kind::Gauge,
        "Sessions stored, read at each scrape (PostgreSQL: its statistics' live-row estimate, which lags commits by about a second).",
    ),
    (
        "wafer_apps_configured",
        Kind::Gauge,
        "Apps configured, read at each scrape.",
    ),
    (
        "wafer_build_info",
        Kind::Gauge,
        "Always 1; the labels say which wafer version and git commit are running.",
    ),
];

/// Writes the `# HELP` text of every series.
pub(crate) fn describe_all(r: &PrometheusRecorder) {
    for (name, kind, help) in SERIES {
        let name = KeyName::from_const_str(name);
        let help = SharedString::const_str(help);
        match kind {
            Kind::Counter => r.describe_counter(name, None, help),
            Kind::Gauge => r.describe_gauge(name, None, help),
            Kind::Histogram => r.describe_histogram(name, None, help),
        }
    }
}
