//! The near cache stepping aside and back: the windows of lookups that
//! judge it, and the auths that pass it by meanwhile (see `admission`).

use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::admission::Turn;
use super::{FlushReason, NearCache};

impl NearCache {
    /// Whether an auth of session `uuid` goes straight to Redis, past the
    /// cache, as without it: while it stands aside (see [`admission`](super::admission)).
    /// Safe for any session: Redis judges by visits this instance held
    /// back at most one and a half slide intervals, a tenth of any session
    /// served here, and those are written long before such a lag could
    /// end a session there.
    pub fn passes(&self, uuid: Uuid) -> bool {
        if !self.admission.is_aside() {
            return false;
        }
        self.metrics.bypassed();
        if let Some(turn) = self.admission.follow(uuid) {
            self.turned(turn);
        }
        true
    }

    /// Counts a lookup the cache answered (`hit`) or sent on to Redis,
    /// and steps aside when a window of them says so.
    pub(super) fn looked_up(&self, hit: bool) {
        // Churning: full, and at least half the window's misses pushed
        // out a copy that never answered an auth. A cache filling for the
        // first time (its misses cold, nothing evicted) is not.
        let churning = |misses: u64, mostly_missed: bool| {
            if !mostly_missed {
                // A window that paid judges nothing: its evictions are let go
                // without making moka catch up on an auth's path.
                self.wasted.store(0, Ordering::Relaxed);
                return None;
            }
            // Evictions are counted as moka catches up (only here).
            self.entries.run_pending_tasks();
            let wasted = self.wasted.swap(0, Ordering::Relaxed);
            let cap = self.settings.max_bytes.max(1);
            let full = self.entries.weighted_size() >= cap - cap / 10;
            (full && wasted.saturating_mul(2) >= misses).then(|| self.entries.entry_count())
        };
        if let Some(turn) = self.admission.looked_up(hit, churning) {
            self.turned(turn);
        }
    }

    /// Stepped aside (emptied: its copies would only cost upkeep) or back.
    fn turned(&self, turn: Turn) {
        match turn {
            Turn::Aside(ratio) => {
                self.flush(FlushReason::Aside);
                self.metrics.aside(true, ratio);
            }
            Turn::Back(ratio) => self.metrics.aside(false, ratio),
        }
    }

    /// Whether the cache stands aside (its misses do not fill it).
    #[cfg(any(test, feature = "testing"))]
    pub fn is_aside(&self) -> bool {
        self.admission.is_aside()
    }
}
