//! Whether the near cache's misses fill it: a copy pays only when it is
//! used again before it is evicted. A fill costs a Redis read now, and
//! later a slide write, its echo and a fetch again of a copy in use; an
//! auth without the cache costs one Redis call. When the cache is full and
//! most lookups miss (many more sessions in use than it holds, accessed
//! about evenly), filling only churns it, and it steps aside: an auth goes
//! straight to Redis the usual way (one call, slid there), as without the
//! cache, but for one in [`CONSULT`], which looks the cache up (the copies
//! held keep answering those, and their hits are what is judged) and, on a
//! miss, fills one time in [`SAMPLE`], so that a hot set can still enter.
//! It fills again once hits come back.
//!
//! Judged over windows of [`WINDOW`] lookups ([`CONSULT`] times fewer
//! while aside, so a window spans as many auths), with a gap between the
//! ratios that step aside and back so that it does not flap.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Lookups per judgement.
pub const WINDOW: u64 = 16_384;
/// Below this share of hits in a window, a full cache steps aside.
pub const STEP_ASIDE: f64 = 0.6;
/// From this share of hits in a window, it fills again.
pub const STEP_BACK: f64 = 0.75;
/// While aside, one auth in this many still consults the cache.
pub const CONSULT: u64 = 8;
/// While aside, one miss of those in this many still fills (one miss in 16
/// in all).
pub const SAMPLE: u64 = 2;

/// The window's lookups (low 32 bits) and hits (high 32 bits), in one word
/// so that a lookup costs one atomic add.
const HIT: u64 = (1 << 32) | 1;
const MISS: u64 = 1;

/// The admission of misses into the near cache.
#[derive(Debug, Default)]
pub struct Admission {
    window: AtomicU64,
    aside: AtomicBool,
    misses_aside: AtomicU64,
    auths_aside: AtomicU64,
}

/// A change of [`Admission`]'s state, for the metric and the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Turn {
    /// The cache stepped aside (the window's hit ratio).
    Aside(f64),
    /// It fills again (the window's hit ratio).
    Back(f64),
}

impl Admission {
    /// Counts a lookup (`hit`: answered from a copy); at the end of a
    /// window, judges it. `full`: whether the cache holds nearly all it may
    /// (asked only then).
    pub fn looked_up(&self, hit: bool, full: impl Fn() -> bool) -> Option<Turn> {
        let size = if self.aside.load(Ordering::Relaxed) {
            WINDOW / CONSULT
        } else {
            WINDOW
        };
        let was = self
            .window
            .fetch_add(if hit { HIT } else { MISS }, Ordering::Relaxed);
        // The window is emptied whenever the state turns, so it meets its
        // size exactly once.
        if (was & 0xffff_ffff) + 1 != size {
            return None;
        }
        // The lookup that ends the window judges it and starts the next.
        let now = self.window.swap(0, Ordering::Relaxed);
        let (hits, total) = (now >> 32, (now & 0xffff_ffff).max(1));
        let ratio = hits as f64 / total as f64;
        let aside = self.aside.load(Ordering::Relaxed);
        if !aside && ratio < STEP_ASIDE && full() {
            self.aside.store(true, Ordering::Relaxed);
            return Some(Turn::Aside(ratio));
        }
        // Back on hits alone: the copies filled one miss in 16 bring them
        // back when the sessions in use fit (a hot set), not when the
        // cache merely emptied (changes drop copies it no longer refetches).
        if aside && ratio >= STEP_BACK {
            self.aside.store(false, Ordering::Relaxed);
            return Some(Turn::Back(ratio));
        }
        None
    }

    /// Whether a miss may fill the cache now.
    pub fn admits(&self) -> bool {
        !self.aside.load(Ordering::Relaxed)
            || self.misses_aside.fetch_add(1, Ordering::Relaxed) % SAMPLE == 0
    }

    /// Whether this auth goes straight to Redis, past the cache: while
    /// aside, all but one in [`CONSULT`].
    pub fn passes(&self) -> bool {
        self.aside.load(Ordering::Relaxed)
            && self.auths_aside.fetch_add(1, Ordering::Relaxed) % CONSULT != 0
    }

    /// Whether the cache stands aside.
    pub fn is_aside(&self) -> bool {
        self.aside.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(a: &Admission, hits: u64, full: bool) -> Option<Turn> {
        let (mut turn, size) = (
            None,
            if a.is_aside() {
                WINDOW / CONSULT
            } else {
                WINDOW
            },
        );
        let hits = hits * size / WINDOW;
        for i in 0..size {
            if let Some(t) = a.looked_up(i < hits, || full) {
                turn = Some(t);
            }
        }
        turn
    }

    #[test]
    fn a_full_cache_that_mostly_misses_steps_aside_and_back() {
        let a = Admission::default();
        // Mostly hits: fills.
        assert_eq!(window(&a, WINDOW * 9 / 10, true), None);
        assert!(!a.is_aside());
        assert!(a.admits());
        // Mostly misses, but not full yet: still fills.
        assert_eq!(window(&a, WINDOW / 10, false), None);
        assert!(!a.is_aside());
        assert!(!a.passes());
        // Mostly misses and full: aside; one auth in CONSULT looks the
        // cache up, one miss of those in SAMPLE fills.
        assert!(matches!(window(&a, WINDOW / 10, true), Some(Turn::Aside(r)) if r < 0.11));
        assert!(a.is_aside());
        let consulted = (0..CONSULT * 10).filter(|_| !a.passes()).count() as u64;
        assert_eq!(consulted, 10);
        let admitted = (0..SAMPLE * 10).filter(|_| a.admits()).count() as u64;
        assert_eq!(admitted, 10);
        // Between the two ratios: stays aside (no flapping).
        assert_eq!(window(&a, WINDOW * 7 / 10, true), None);
        assert!(a.is_aside());
        // Hits back: fills again.
        assert!(matches!(
            window(&a, WINDOW * 8 / 10, true),
            Some(Turn::Back(_))
        ));
        assert!(!a.is_aside());
        assert!(a.admits());
        assert!(!a.passes());
    }

    #[test]
    fn an_emptied_cache_stays_aside_until_hits_come_back() {
        let a = Admission::default();
        assert!(window(&a, 0, true).is_some());
        assert!(a.is_aside());
        // Empty now (not full), still missing: aside.
        assert_eq!(window(&a, WINDOW / 2, false), None);
        assert!(a.is_aside());
        assert!(matches!(window(&a, WINDOW, false), Some(Turn::Back(r)) if r == 1.0));
        assert!(!a.is_aside());
    }
}
