//! How big a near cache is and how often its slides reach Redis.

use std::time::Duration;

use crate::config::defaults;
use crate::store::visit_granularity::VisitGranularity;

/// Sessions of an app are served from the near cache only when its
/// `session_duration` is at least this many slide intervals: Redis' copy
/// then lags a session by at most a tenth of it.
pub const MIN_SESSION_SLIDES: i64 = 10;

/// Size and timing of a near cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearSettings {
    /// Most sessions held.
    pub max_entries: u64,
    /// Most bytes held (the sessions' sizes as estimated here).
    pub max_bytes: u64,
    /// A session's slides reach Redis at most once per this, and within
    /// one and a half of it (spread per session): a share of its app's
    /// `session_duration` (between [`SLIDE_FLOOR`] and [`SLIDE_CAP`]) or a
    /// fixed duration.
    pub slide: VisitGranularity,
}

/// Shortest slide interval of a share.
pub const SLIDE_FLOOR: Duration = Duration::from_secs(1);
/// Longest slide interval of a share: what a `kill -9` may cost a
/// session's sliding in Redis, and how far behind another instance (or the
/// console) may see its last visit.
pub const SLIDE_CAP: Duration = Duration::from_secs(300);

impl NearSettings {
    /// Default: the flags' defaults ([`defaults::NEAR_CACHE_ENTRIES`],
    /// [`defaults::NEAR_CACHE_BYTES`], [`defaults::NEAR_CACHE_SLIDE_SHARE`]):
    /// one million sessions, 1.25 GiB (a million copies of sessions with a
    /// ~330-byte user_info: [`COPY_OVERHEAD`](super::COPY_OVERHEAD); larger
    /// ones are bounded by the bytes first), slides every 1% of the app's
    /// `session_duration`, between 1 s and 5 min.
    pub const DEFAULT: NearSettings = NearSettings {
        max_entries: defaults::NEAR_CACHE_ENTRIES,
        max_bytes: defaults::NEAR_CACHE_BYTES,
        slide: VisitGranularity::ShareOfSession(defaults::NEAR_CACHE_SLIDE_SHARE),
    };

    /// The slide interval of sessions of `session_ms`, ms.
    pub fn slide_ms(&self, session_ms: i64) -> i64 {
        self.slide
            .for_session_ms_within(session_ms, SLIDE_FLOOR, SLIDE_CAP)
    }

    /// How often the slide writer looks for due slides.
    pub fn writer_period(&self) -> Duration {
        match self.slide {
            VisitGranularity::Every(d) => (d / 10).max(Duration::from_millis(10)),
            // Often, so that a million sessions' slides reach Redis as a
            // steady trickle, not a burst of thousands every half second
            // that the auths asking Redis meanwhile queue behind.
            VisitGranularity::ShareOfSession(_) => SLIDE_FLOOR / 20,
        }
    }
}

impl Default for NearSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}
