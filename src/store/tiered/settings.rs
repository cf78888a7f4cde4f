//! The tiered store's settings: how often its background work runs, how
//! often a visit reaches PostgreSQL, what a Redis miss may cost it, and the
//! near cache.

use std::time::Duration;

use crate::store::near::NearSettings;
use crate::store::visit_granularity::VisitGranularity;

/// Default budget of read-throughs per second per instance: far above
/// what repopulating Redis after a flush needs per instance (each session
/// is read once, then served from Redis), far below what a flood would ask.
pub const DEFAULT_READ_THROUGH_PER_SECOND: u32 = 2_000;

/// How the tiered store runs.
#[derive(Debug, Clone, Copy)]
pub struct TieredSettings {
    /// How often queued last visits are written to PostgreSQL.
    pub flush_every: Duration,
    /// How often the apps are reloaded (how fast other instances' changes
    /// arrive).
    pub apps_refresh_every: Duration,
    /// How often expired sessions are purged from PostgreSQL.
    pub purge_every: Duration,
    /// How often failed Redis writes are retried as evictions.
    pub repair_every: Duration,
    /// A session's last visit is written to PostgreSQL at most once per
    /// this (it slides in Redis on every auth). PostgreSQL's copy lags by at
    /// most this plus one flush.
    pub visit: VisitGranularity,
    /// PostgreSQL reads per second a Redis miss may cause (0: unbounded);
    /// past it a miss answers 503 (see `unknown.rs`).
    pub read_through_per_second: u32,
    /// The near cache in front of Redis (`None`: every auth asks Redis).
    pub near: Option<NearSettings>,
}

impl Default for TieredSettings {
    fn default() -> Self {
        TieredSettings {
            flush_every: Duration::from_secs(1),
            apps_refresh_every: Duration::from_millis(500),
            purge_every: Duration::from_secs(60),
            repair_every: Duration::from_secs(1),
            visit: VisitGranularity::DEFAULT,
            read_through_per_second: DEFAULT_READ_THROUGH_PER_SECOND,
            near: Some(NearSettings::DEFAULT),
        }
    }
}
