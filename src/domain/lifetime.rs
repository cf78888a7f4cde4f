//! A session's lifetime: an app's sliding and absolute limits, and the one
//! rule of whether a session is alive. Every store and the near cache ask
//! this instead of doing their own arithmetic (Redis' `auth.lua` is the
//! one other copy, held to it by a test).

use crate::clock::Timestamp;

const MS_PER_SEC: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;

/// An app's two session limits, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Absolute: a session dies this long after login, whatever its use.
    pub login_ms: i64,
    /// Sliding: a session dies this long after its last valid check.
    pub session_ms: i64,
}

impl Limits {
    /// Limits from an app's `login_duration` (days) and `session_duration` (seconds).
    pub fn new(login_days: u32, session_secs: u32) -> Self {
        Limits {
            login_ms: i64::from(login_days) * MS_PER_DAY,
            session_ms: i64::from(session_secs) * MS_PER_SEC,
        }
    }

    /// Whether a session created at `create` and last seen at `last_visit` is
    /// still alive at `now`.
    pub fn alive(&self, create: Timestamp, last_visit: Timestamp, now: Timestamp) -> bool {
        now.0 - create.0 < self.login_ms && now.0 - last_visit.0 < self.session_ms
    }

    /// The instant the session dies unless checked again before: the earlier
    /// of the absolute and the sliding deadline.
    pub fn deadline(&self, create: Timestamp, last_visit: Timestamp) -> Timestamp {
        create
            .plus_millis(self.login_ms)
            .min(last_visit.plus_millis(self.session_ms))
    }
}
