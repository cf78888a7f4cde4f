//! How often a session's last visit reaches PostgreSQL: the visit
//! granularity. Sessions slide in Redis on every auth; PostgreSQL's copy
//! matters only when Redis has lost a session, and then a copy that is `g`
//! old shortens that session's sliding window by up to `g`.
//!
//! The cost of a fine granularity follows the number of distinct sessions
//! active per interval, not the auth rate: with 1,000,000 sessions each
//! coming back less often than once a minute, a fixed 60 s still meant one
//! row update per auth. So the default is relative to each app's
//! `session_duration`: 1% of it, at least one second (so short sessions do
//! not write on every auth) and at most six hours (what a Redis loss may
//! cost a long session). A 30-day session (1% would be 7.2 h) is written at
//! most once per 6 hours; a one-day session once per 14.4 minutes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::defaults;

/// Shortest relative granularity.
const FLOOR: Duration = Duration::from_secs(1);
/// Longest relative granularity.
const CAP: Duration = Duration::from_secs(6 * 3600);

/// A visit granularity: fixed, or a share of each app's session duration.
#[derive(Clone, Copy, PartialEq)]
pub enum VisitGranularity {
    /// At most once per this, whatever the app.
    Every(Duration),
    /// At most once per this share (0 < share ≤ 1) of the app's
    /// `session_duration`, between one second and six hours.
    ShareOfSession(f64),
}

impl VisitGranularity {
    /// The default: 1% of each app's session duration
    /// ([`defaults::VISIT_GRANULARITY_SHARE`]).
    pub const DEFAULT: VisitGranularity =
        VisitGranularity::ShareOfSession(defaults::VISIT_GRANULARITY_SHARE);

    /// The granularity, in ms, for sessions of `session_ms`.
    pub fn for_session_ms(self, session_ms: i64) -> i64 {
        self.for_session_ms_within(session_ms, FLOOR, CAP)
    }

    /// [`VisitGranularity::for_session_ms`] with a share kept between
    /// `floor` and `cap` (a fixed duration is kept as it is).
    pub fn for_session_ms_within(self, session_ms: i64, floor: Duration, cap: Duration) -> i64 {
        match self {
            VisitGranularity::Every(d) => millis(d),
            VisitGranularity::ShareOfSession(share) => {
                let ms = (session_ms as f64 * share) as i64;
                ms.clamp(millis(floor), millis(cap))
            }
        }
    }

    /// The longest any session's copy in PostgreSQL can lag its visits
    /// under this setting.
    pub fn longest(self) -> Duration {
        match self {
            VisitGranularity::Every(d) => d,
            VisitGranularity::ShareOfSession(_) => CAP,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How much longer than its deadline the purge leaves a session's record:
/// PostgreSQL's last visit lags Redis' by up to two granularities (a visit
/// is marked written in Redis when it is queued, and the queue is written
/// within one more), and every instance's granularity, share or fixed, is at
/// most six hours, so no instance's setting can make the purge delete a
/// session another instance still slides.
pub const PURGE_MARGIN: Duration = Duration::from_secs(2 * 6 * 3600);

impl Default for VisitGranularity {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for VisitGranularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VisitGranularity::Every(d) => write!(f, "{}", humantime::format_duration(*d)),
            VisitGranularity::ShareOfSession(share) => write!(f, "{}%", share * 100.0),
        }
    }
}

impl fmt::Debug for VisitGranularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for VisitGranularity {
    type Err = String;

    /// `1%` (a share of each app's session duration) or a duration (`60s`).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(percent) = s.strip_suffix('%') {
            let p: f64 = percent
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage like 1%"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err("the percentage must be above 0 and at most 100".into());
            }
            return Ok(VisitGranularity::ShareOfSession(p / 100.0));
        }
        let d = humantime::parse_duration(s).map_err(|_| {
            format!("`{s}` is neither a percentage like 1% nor a duration like 60s")
        })?;
        if d.is_zero() {
            return Err("the duration must be above zero".into());
        }
        // Every instance's setting stays under the one bound the purge
        // waits out (`PURGE_MARGIN`), whatever the others are set to.
        if d > CAP {
            return Err("the duration must be at most 6h (the purge waits for visits that long)".into());
        }
        Ok(VisitGranularity::Every(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn one_percent_of_a_30_day_session_is_capped_at_six_hours() {
        let g = VisitGranularity::DEFAULT;
        assert_eq!(g.for_session_ms(30 * DAY_MS), 6 * 3_600_000);
        assert_eq!(g.for_session_ms(DAY_MS), 864_000, "1% of a day: 14.4 min");
        assert_eq!(g.for_session_ms(60_000), 1_000, "the floor");
        assert_eq!(g.longest(), CAP);
    }

    #[test]
    fn a_fixed_granularity_ignores_the_session() {
        let g: VisitGranularity = "60s".parse().unwrap();
        assert_eq!(g.for_session_ms(30 * DAY_MS), 60_000);
        assert_eq!(g.for_session_ms(1_000), 60_000);
        assert_eq!(g.longest(), Duration::from_secs(60));
    }

    #[test]
    fn parsing_takes_percentages_and_durations_and_refuses_nonsense() {
        assert_eq!(
            "1%".parse::<VisitGranularity>().unwrap(),
            VisitGranularity::ShareOfSession(0.01)
        );
        assert_eq!(
            "0.5 %".parse::<VisitGranularity>().unwrap(),
            VisitGranularity::ShareOfSession(0.005)
        );
        assert_eq!(
            "6h".parse::<VisitGranularity>(),
            Ok(VisitGranularity::Every(Duration::from_secs(6 * 3600)))
        );
        for bad in ["0%", "101%", "x%", "0s", "soon", "", "6h 1s", "7h"] {
            assert!(bad.parse::<VisitGranularity>().is_err(), "{bad}");
        }
        assert_eq!(VisitGranularity::DEFAULT.to_string(), "1%");
    }
}
