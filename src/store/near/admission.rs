//! Whether the near cache is worth its cost now. A copy pays only when it
//! is used again before it is evicted: a fill costs a Redis read now, and
//! later a slide write and a fetch again of a copy in use, where an auth
//! without the cache costs one Redis call. When most lookups miss and the
//! misses only churn the cache (it is full, and they push out copies that
//! never answered an auth: many more sessions in use than it holds,
//! accessed about evenly), it steps aside: it empties, and every auth goes
//! straight to Redis the usual way (one call, slid there), exactly as
//! without the cache. A cache filling for the first time misses as much,
//! but evicts nothing unused, and fills on.
//!
//! While aside, it learns whether it would pay again from a shadow: a
//! small simulated LRU cache of the cache's size, scaled down, that
//! follows the sessions of a fixed hash sample (spatial sampling, as
//! SHARDS estimates miss ratios; a session is followed on every auth or on
//! none, so reuse is seen as the real cache would see it). Its hit ratio
//! estimates the cache's; from [`STEP_BACK`], the cache fills again. An
//! auth of a session outside the sample costs one hash; one inside it, one
//! short lock.
//!
//! Judged over windows of [`WINDOW`] lookups ([`SHADOW_WINDOW`] sampled
//! auths while aside), with a gap between the ratios that step aside and
//! back so that it does not flap.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use uuid::Uuid;

/// Lookups per judgement.
pub const WINDOW: u64 = 16_384;
/// Below this share of hits in a window, a full cache steps aside.
pub const STEP_ASIDE: f64 = 0.6;
/// From this share of hits in a shadow window, it fills again.
pub const STEP_BACK: f64 = 0.75;
/// Sampled auths per judgement of the shadow.
pub const SHADOW_WINDOW: u64 = 1_024;
/// About as many sessions the shadow simulates (the sample rate is the
/// power of two that scales the cache down to about this): enough for a
/// ratio within a few percent, few enough to follow under one lock.
pub const SHADOW_ENTRIES: u64 = 1_024;

/// The window's lookups (low 32 bits) and hits (high 32 bits), in one word
/// so that a lookup costs one atomic add.
const HIT: u64 = (1 << 32) | 1;
const MISS: u64 = 1;

/// The admission of misses into the near cache.
#[derive(Debug, Default)]
pub struct Admission {
    window: AtomicU64,
    aside: AtomicBool,
    /// Sample mask while aside: a session is followed when its hash has
    /// none of these bits (0: every session).
    mask: AtomicU64,
    /// Salt of the sample's hash: a new sample each time it steps aside.
    salt: AtomicU64,
    shadow: Mutex<Shadow>,
}

/// A change of [`Admission`]'s state, for the metric and the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Turn {
    /// The cache stepped aside (the window's hit ratio).
    Aside(f64),
    /// It fills again (the shadow's estimate of its hit ratio).
    Back(f64),
}

impl Admission {
    /// Counts a lookup (`hit`: answered from a copy); at the end of a
    /// window, judges it. `churning`, told at the end of every window
    /// its misses and whether they were most of it: when they were, how
    /// many copies the cache holds if its misses only churn it (it is full
    /// and they evict copies never used); such a cache steps aside, with a
    /// shadow of that many sessions.
    pub fn looked_up(
        &self,
        hit: bool,
        churning: impl Fn(u64, bool) -> Option<u64>,
    ) -> Option<Turn> {
        let was = self
            .window
            .fetch_add(if hit { HIT } else { MISS }, Ordering::Relaxed);
        // The window is emptied whenever it is judged, so it meets its size
        // exactly once.
        if (was & 0xffff_ffff) + 1 != WINDOW {
            return None;
        }
        let now = self.window.swap(0, Ordering::Relaxed);
        let (hits, total) = (now >> 32, (now & 0xffff_ffff).max(1));
        let ratio = hits as f64 / total as f64;
        if self.is_aside() {
            return None;
        }
        let capacity = churning(total - hits, ratio < STEP_ASIDE)?;
        self.step_aside(capacity);
        Some(Turn::Aside(ratio))
    }

    fn step_aside(&self, capacity: u64) {
        let rate = (capacity / SHADOW_ENTRIES).max(1).next_power_of_two();
        if let Ok(mut shadow) = self.shadow.lock() {
            *shadow = Shadow::new((capacity / rate).max(1));
        }
        self.mask.store(rate - 1, Ordering::Relaxed);
        self.salt
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        self.aside.store(true, Ordering::Release);
    }

    /// Whether a miss may fill the cache now (not while aside).
    pub fn admits(&self) -> bool {
        !self.is_aside()
    }

    /// While aside, follows an auth of session `uuid` in the shadow, if
    /// the session is in the sample; at the end of a shadow window, judges
    /// whether the cache would pay again, and if so fills again.
    pub fn follow(&self, uuid: Uuid) -> Option<Turn> {
        let (a, b) = uuid.as_u64_pair();
        let hash = (a ^ b ^ self.salt.load(Ordering::Relaxed)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The high bits: the multiply mixes every input bit into them.
        if (hash >> 32) & self.mask.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let ratio = self.shadow.lock().ok()?.access(uuid)?;
        if ratio >= STEP_BACK && self.aside.swap(false, Ordering::AcqRel) {
            // The cache's window starts again with it.
            self.window.store(0, Ordering::Relaxed);
            return Some(Turn::Back(ratio));
        }
        None
    }

    /// Whether the cache stands aside.
    pub fn is_aside(&self) -> bool {
        self.aside.load(Ordering::Acquire)
    }
}

/// An LRU cache of sessions (their uuids only), counting what it would
/// have answered.
#[derive(Debug, Default)]
struct Shadow {
    capacity: usize,
    /// Each session held, and the number of its latest access.
    held: HashMap<Uuid, u64>,
    /// Accesses, oldest first; an access is stale once its session was
    /// accessed again (or evicted), and skipped when met.
    order: VecDeque<(u64, Uuid)>,
    accesses: u64,
    hits: u64,
    window: u64,
}

impl Shadow {
    fn new(capacity: u64) -> Self {
        Shadow {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            ..Shadow::default()
        }
    }

    /// Follows an access of `uuid`; at the end of a window, its hit ratio.
    fn access(&mut self, uuid: Uuid) -> Option<f64> {
        self.accesses += 1;
        self.window += 1;
        if self.held.insert(uuid, self.accesses).is_some() {
            self.hits += 1;
        }
        self.order.push_back((self.accesses, uuid));
        while self.held.len() > self.capacity {
            let Some((at, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.held.get(&oldest) == Some(&at) {
                self.held.remove(&oldest);
            }
        }
        // A hot set leaves mostly stale places behind.
        if self.order.len() > 2 * self.capacity + 1_024 {
            let held = &self.held;
            self.order.retain(|(at, u)| held.get(u) == Some(at));
        }
        if self.window < SHADOW_WINDOW {
            return None;
        }
        let ratio = self.hits as f64 / self.window as f64;
        (self.window, self.hits) = (0, 0);
        Some(ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(a: &Admission, hits: u64, churning: Option<u64>) -> Option<Turn> {
        let mut turn = None;
        for i in 0..WINDOW {
            if let Some(t) = a.looked_up(i < hits, |_, low| churning.filter(|_| low)) {
                turn = Some(t);
            }
        }
        turn
    }

    /// Follows `auths` auths in turn over `sessions`; the last turn.
    fn follow(a: &Admission, sessions: &[Uuid], auths: usize) -> Option<Turn> {
        let mut turn = None;
        for u in sessions.iter().cycle().take(auths) {
            if let Some(t) = a.follow(*u) {
                turn = Some(t);
            }
        }
        turn
    }

    fn sessions(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn a_full_cache_that_mostly_misses_steps_aside() {
        let a = Admission::default();
        // Mostly hits: fills.
        assert_eq!(window(&a, WINDOW * 9 / 10, Some(64)), None);
        assert!(a.admits());
        // Mostly misses, but not churning (not full yet, or its misses
        // evict nothing unused: a first fill): still fills.
        assert_eq!(window(&a, WINDOW / 10, None), None);
        assert!(a.admits());
        // Mostly misses and full: aside, and no miss fills.
        assert!(matches!(window(&a, WINDOW / 10, Some(64)), Some(Turn::Aside(r)) if r < 0.11));
        assert!(a.is_aside());
        assert!(!a.admits());
        // Lookups while aside (a fill already under way) judge nothing.
        assert_eq!(window(&a, WINDOW, Some(64)), None);
        assert!(a.is_aside());
    }

    #[test]
    fn aside_the_shadow_brings_it_back_only_for_a_set_that_fits() {
        let a = Admission::default();
        assert!(window(&a, 0, Some(64)).is_some());
        // Round robin over four times what the cache holds: stays aside
        // (an LRU cache never hits in a cycle longer than itself).
        let many = sessions(256);
        assert_eq!(follow(&a, &many, 8 * SHADOW_WINDOW as usize), None);
        assert!(a.is_aside());
        // A set in use that fits: back within a window or two.
        let hot = sessions(48);
        assert!(matches!(
            follow(&a, &hot, 2 * SHADOW_WINDOW as usize),
            Some(Turn::Back(r)) if r >= STEP_BACK
        ));
        assert!(!a.is_aside());
        assert!(a.admits());
    }

    #[test]
    fn a_large_cache_follows_a_sample_of_its_sessions() {
        let a = Admission::default();
        // 64 times the shadow's size: one session in 64 followed.
        assert!(window(&a, 0, Some(64 * SHADOW_ENTRIES)).is_some());
        let all = sessions(64 * 1_000);
        let followed = all.iter().filter(|u| {
            let before = a.shadow.lock().map(|s| s.accesses).unwrap_or(0);
            a.follow(**u);
            a.shadow.lock().map(|s| s.accesses).unwrap_or(0) > before
        });
        let n = followed.count();
        assert!((700..1_300).contains(&n), "{n} of 64,000 followed");
        // Half the cache's size in use, accessed evenly: back (each
        // session's reuse is seen on every one of its auths).
        let fits = sessions(32 * SHADOW_ENTRIES as usize);
        assert!(follow(&a, &fits, 6 * fits.len()).is_some());
        assert!(!a.is_aside());
    }

    #[test]
    fn the_shadow_is_a_least_recently_used_cache() {
        let mut s = Shadow::new(2);
        let [x, y, z] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        for u in [x, y, x, z, y] {
            s.access(u);
        }
        // x and y held, x used again, z evicted y, y evicted x.
        assert_eq!(s.hits, 1);
        assert!(s.held.contains_key(&z) && s.held.contains_key(&y));
        assert!(!s.held.contains_key(&x));
    }
}
