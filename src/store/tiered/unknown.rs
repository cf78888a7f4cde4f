//! What a flood of unknown session ids may cost PostgreSQL. On a Redis miss
//! the tiered store reads the record (Redis may have lost the session); a
//! scanner sending random uuids would turn every request into a PostgreSQL
//! read. Two bounds:
//!
//! - a short negative cache: a uuid PostgreSQL did not know is refused
//!   without asking again for [`UNKNOWN_TTL`] (a login of that uuid clears
//!   it at once on this instance; elsewhere it ages out);
//! - a budget of read-throughs per second per instance (a token bucket):
//!   past it a miss answers 503, never a wrong 401, so a session that
//!   exists is at worst asked to retry.
//!
//! Neither applies while Redis is down: then every auth is a read-through
//! by design.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

/// How long a uuid PostgreSQL did not know is refused without asking.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(2);
/// Uuids remembered at most; past it, the expired ones are dropped, and if
/// that is not enough, all (forgetting only costs reads).
const UNKNOWN_MAX: usize = 200_000;

/// The negative cache and the read-through budget of one instance.
pub struct MissGuard {
    unknown: DashMap<Uuid, Instant>,
    /// Read-throughs per second allowed; 0 = no budget.
    per_second: u32,
    bucket: Mutex<(f64, Instant)>,
}

impl MissGuard {
    /// A guard allowing `per_second` read-throughs (0: unbounded).
    pub fn new(per_second: u32) -> Self {
        MissGuard {
            unknown: DashMap::new(),
            per_second,
            bucket: Mutex::new((f64::from(per_second), Instant::now())),
        }
    }

    /// Whether `uuid` was unknown to PostgreSQL less than [`UNKNOWN_TTL`] ago.
    pub fn recently_unknown(&self, uuid: Uuid, now: Instant) -> bool {
        self.unknown
            .get(&uuid)
            .is_some_and(|at| now.saturating_duration_since(*at) < UNKNOWN_TTL)
    }

    /// Remembers that PostgreSQL does not know `uuid`.
    pub fn unknown(&self, uuid: Uuid, now: Instant) {
        if self.unknown.len() >= UNKNOWN_MAX {
            self.unknown
                .retain(|_, at| now.saturating_duration_since(*at) < UNKNOWN_TTL);
            if self.unknown.len() >= UNKNOWN_MAX {
                self.unknown.clear();
            }
        }
        self.unknown.insert(uuid, now);
    }

    /// Forgets `uuid` (a login made it).
    pub fn known(&self, uuid: Uuid) {
        self.unknown.remove(&uuid);
    }

    /// Takes one read-through from the budget; `false` when it is spent.
    pub fn allow_read(&self, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let Ok(mut b) = self.bucket.lock() else {
            return true;
        };
        let cap = f64::from(self.per_second);
        let refilled = (b.0 + now.saturating_duration_since(b.1).as_secs_f64() * cap).min(cap);
        if refilled >= 1.0 {
            *b = (refilled - 1.0, now);
            true
        } else {
            *b = (refilled, now);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_uuids_are_remembered_briefly_and_forgotten_by_a_login() {
        let g = MissGuard::new(0);
        let (u, t0) = (Uuid::new_v4(), Instant::now());
        assert!(!g.recently_unknown(u, t0));
        g.unknown(u, t0);
        assert!(g.recently_unknown(u, t0 + Duration::from_secs(1)));
        assert!(!g.recently_unknown(u, t0 + UNKNOWN_TTL));
        g.unknown(u, t0);
        g.known(u);
        assert!(!g.recently_unknown(u, t0), "a login clears it");
    }

    #[test]
    fn the_budget_allows_its_rate_and_zero_is_unbounded() {
        let g = MissGuard::new(10);
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| g.allow_read(t0)).count(), 10);
        assert!(g.allow_read(t0 + Duration::from_millis(150)), "refilled");
        let free = MissGuard::new(0);
        assert!((0..10_000).all(|_| free.allow_read(t0)));
    }
}
