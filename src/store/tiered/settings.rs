//! The tiered store's settings: how often its background work runs, how
//! often a visit reaches PostgreSQL, what a Redis miss may cost it, and the
//! near cache.

use std::time::Duration;

use crate::config::defaults;
use crate::store::near::NearSettings;
use crate::store::visit_granularity::VisitGranularity;

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
    /// Most sessions whose last visit waits for PostgreSQL; past it (with
    /// PostgreSQL away for long) visits are dropped and counted.
    pub write_behind_cap: usize,
}

impl Default for TieredSettings {
    fn default() -> Self {
        TieredSettings {
            flush_every: defaults::FLUSH_EVERY,
            apps_refresh_every: defaults::APPS_REFRESH_EVERY,
            purge_every: defaults::PURGE_EVERY,
            repair_every: defaults::REPAIR_EVERY,
            visit: VisitGranularity::DEFAULT,
            read_through_per_second: defaults::READ_THROUGH_LIMIT,
            near: Some(NearSettings::DEFAULT),
            write_behind_cap: defaults::WRITE_BEHIND_CAP,
        }
    }
}
