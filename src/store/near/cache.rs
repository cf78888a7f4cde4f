//! The copies: how a check is answered from one, how one is filled from
//! Redis' answer, and what empties them. The rules are in the module
//! documentation of `store::near`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use uuid::Uuid;

use super::admission::Admission;
use super::metrics::{FlushReason, NearMetrics, Sizes};
use super::settings::{MIN_SESSION_SLIDES, NearSettings};
use super::slides::{PendingSlide, SlideOutcome, SlideQueue};
use super::{Entry, Lookup};
use crate::domain::session::Credentials;

/// The right to fill one session's copy from one Redis answer; void if an
/// invalidation of it or a flush comes first. Dropped unused (Redis
/// refused, failed, or the request was cancelled while it asked), it gives
/// itself back: tickets never outlive their request.
pub struct FillTicket<'a> {
    cache: &'a NearCache,
    uuid: Uuid,
    id: u64,
    epoch: u64,
    slide_ms: i64,
}

impl Drop for FillTicket<'_> {
    fn drop(&mut self) {
        // A later ticket of the same session is left alone.
        self.cache
            .fills
            .remove_if(&self.uuid, |_, id| *id == self.id);
    }
}

/// The near cache of one instance. See the module documentation for its
/// rules.
pub struct NearCache {
    pub(super) entries: moka::sync::Cache<Uuid, Arc<Entry>>,
    /// In-flight fills: the ticket that may fill each session.
    fills: DashMap<Uuid, u64>,
    next_ticket: AtomicU64,
    /// Bumped by every flush: tickets from before it are void.
    epoch: AtomicU64,
    live: AtomicBool,
    /// Pending slides, one per session, oldest first.
    slides: SlideQueue,
    bytes: Arc<AtomicI64>,
    /// Copies evicted for room before they answered any auth.
    pub(super) wasted: Arc<AtomicU64>,
    pub(super) settings: NearSettings,
    pub(super) metrics: NearMetrics,
    /// Whether misses fill it (not while it does not pay).
    pub(super) admission: Admission,
}

impl NearCache {
    /// An empty, dark near cache (it serves once [`NearCache::start_serving`]).
    pub fn new(settings: NearSettings, metrics: NearMetrics) -> Self {
        let max_entries = settings.max_entries.max(1);
        let max_bytes = settings.max_bytes.max(1);
        // One bound of weight covers both: each entry weighs at least its
        // share of the byte bound per entry allowed.
        let floor = u32::try_from(max_bytes / max_entries).unwrap_or(u32::MAX);
        let bytes = Arc::new(AtomicI64::new(0));
        let freed = bytes.clone();
        let wasted = Arc::new(AtomicU64::new(0));
        let evicted_unused = wasted.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |_: &Uuid, e: &Arc<Entry>| e.weight.max(floor))
            .eviction_listener(move |_, e: Arc<Entry>, cause| {
                freed.fetch_sub(i64::from(e.weight), Ordering::Relaxed);
                if cause == moka::notification::RemovalCause::Size && !e.hit.load(Ordering::Relaxed)
                {
                    evicted_unused.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        NearCache {
            entries,
            fills: DashMap::new(),
            next_ticket: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            slides: SlideQueue::default(),
            bytes,
            wasted,
            settings,
            metrics,
            admission: Admission::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &NearSettings {
        &self.settings
    }

    /// Whether sessions under these credentials' app may be served here.
    fn covers(&self, creds: &Credentials) -> bool {
        let session_ms = creds.limits.session_ms;
        session_ms >= MIN_SESSION_SLIDES.saturating_mul(self.settings.slide_ms(session_ms))
    }

    /// The newest visit of session `uuid` this instance knows of and may
    /// not have written to Redis yet, if it holds a copy.
    pub fn visit_of(&self, uuid: Uuid) -> Option<i64> {
        self.entries.get(&uuid).map(|e| e.visited())
    }

    /// Whether the cache holds a copy of session `uuid`.
    #[cfg(any(test, feature = "testing"))]
    pub fn holds(&self, uuid: Uuid) -> bool {
        self.entries.contains_key(&uuid)
    }

    /// Whether the cache serves now.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Checks `creds` against the copy, sliding it on acceptance.
    pub fn lookup(&self, creds: &Credentials) -> Lookup {
        if !self.is_live() || !self.covers(creds) {
            return Lookup::Ask;
        }
        let Some(e) = self.entries.get(&creds.uuid) else {
            self.missed();
            return Lookup::Ask;
        };
        let now = creds.now.0;
        // Both compared, so the time taken does not say which failed.
        let same_app = e.app == creds.app_id;
        let same_key = creds.skey_hash.matches(&e.skey_hash);
        if !(same_app & same_key) {
            self.answered(false);
            return Lookup::Refuse;
        }
        let limits = &creds.limits;
        let alive = limits.alive(
            crate::clock::Timestamp(e.created),
            crate::clock::Timestamp(e.visited()),
            creds.now,
        );
        // Slides half a session behind: the writer is stuck (or time runs
        // faster than the slide interval); Redis answers, once caught up.
        let behind = now - e.written.load(Ordering::Acquire) >= limits.session_ms / 2;
        if !alive || behind {
            self.missed();
            return Lookup::Ask;
        }
        if now > e.visited.load(Ordering::Relaxed) {
            e.visited.fetch_max(now, Ordering::AcqRel);
        }
        // No room for its slide: Redis answers (and slides) it instead.
        if now > e.written.load(Ordering::Acquire) && !self.queue_slide(&e) {
            self.missed();
            return Lookup::Ask;
        }
        if !e.hit.load(Ordering::Relaxed) {
            e.hit.store(true, Ordering::Relaxed);
            e.used.store(true, Ordering::Relaxed);
        }
        self.answered(true);
        Lookup::Accept(e.profile.clone())
    }

    /// Queues `e`'s slide (one per session); `false` when the queue is
    /// full. Pending slides count against the cache's entry bound: each
    /// holds its copy, which may have been evicted since.
    fn queue_slide(&self, e: &Arc<Entry>) -> bool {
        self.slides.queue(e, self.settings.max_entries.max(1))
    }

    /// A lookup the cache answered itself (`accepted`, or refused).
    fn answered(&self, accepted: bool) {
        self.metrics.hit(accepted);
        self.looked_up(true);
    }

    /// A lookup sent on to Redis.
    fn missed(&self) {
        self.metrics.miss();
        self.looked_up(false);
    }

    /// Whether the slide queue has room for another session.
    fn slides_have_room(&self) -> bool {
        self.slides.has_room(self.settings.max_entries.max(1))
    }

    /// The right to fill `creds`' session from the Redis answer about to be
    /// asked for; `None` when the cache would not serve it anyway, could
    /// not hold its slide, or stands aside (see [`admission`](super::admission)).
    pub fn ticket(&self, creds: &Credentials) -> Option<FillTicket<'_>> {
        if !self.is_live() || !self.covers(creds) || !self.slides_have_room() {
            return None;
        }
        if !self.admission.admits() {
            return None;
        }
        // The epoch is read before the ticket is visible: a flush after
        // this point voids it either way.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.fills.insert(creds.uuid, id);
        Some(FillTicket {
            cache: self,
            uuid: creds.uuid,
            id,
            epoch,
            slide_ms: self.settings.slide_ms(creds.limits.session_ms),
        })
    }

    /// Fills the copy under `ticket`, unless it was voided. The copy is
    /// then queued to slide if it is ahead of Redis; so is a visit whose
    /// copy was voided (the auth was accepted: its visit must reach Redis).
    /// Answers the slide to write at once when the queue had no room for it.
    pub fn fill(&self, ticket: FillTicket<'_>, entry: Entry) -> Option<PendingSlide> {
        entry.slide_ms.store(ticket.slide_ms, Ordering::Relaxed);
        let entry = Arc::new(entry);
        let mut unqueued = None;
        if entry.visited() > entry.written.load(Ordering::Acquire) && !self.queue_slide(&entry) {
            unqueued = Some(PendingSlide {
                visited: entry.visited(),
                entry: entry.clone(),
            });
        }
        let mut filled = false;
        // Under the ticket's shard lock: an invalidation removes the
        // ticket under the same lock, so it either voids the ticket first
        // or removes this copy after.
        self.fills.remove_if(&ticket.uuid, |_, id| {
            if *id != ticket.id || self.epoch.load(Ordering::SeqCst) != ticket.epoch {
                return false;
            }
            self.entries.insert(ticket.uuid, entry.clone());
            filled = true;
            true
        });
        if filled {
            self.bytes
                .fetch_add(i64::from(entry.weight), Ordering::Relaxed);
            // A flush that began after the check above bumped the epoch
            // first: drop what may have landed after it emptied the cache.
            if self.epoch.load(Ordering::SeqCst) != ticket.epoch || !self.is_live() {
                self.entries.invalidate(&ticket.uuid);
            }
        }
        unqueued
    }

    /// Drops the copy of `uuid` and voids its fills: this instance has just
    /// changed the session (login, logout, revoke, phone number) and
    /// answers only once its own copy is gone, not when Redis' push comes.
    pub fn forget(&self, uuid: Uuid) {
        self.fills.remove(&uuid);
        self.entries.invalidate(&uuid);
    }

    /// Drops the copy of `uuid`: Redis says it changed. Answers the copy
    /// when it was in use, so that it can be fetched again (most changes
    /// are slides, this instance's own among them, which change nothing an
    /// auth answers).
    pub fn invalidate(&self, uuid: Uuid) -> Option<Arc<Entry>> {
        // Tickets first: a fill asked before this change fills nothing.
        self.fills.remove(&uuid);
        self.metrics.invalidated();
        let dropped = self.entries.remove(&uuid);
        // Standing aside, a copy is fetched again only by a miss that
        // fills (one in 16): a fetch per change is the churn it avoids.
        dropped.filter(|e| e.used.load(Ordering::Relaxed) && !self.admission.is_aside())
    }

    /// Settles a written slide: Redis holds its visit, or no longer holds
    /// the session as copied (the copy is dropped).
    pub fn slid(&self, slide: &PendingSlide, end: SlideOutcome) {
        match end {
            SlideOutcome::Written | SlideOutcome::Unchanged => {
                slide
                    .entry
                    .written
                    .fetch_max(slide.visited, Ordering::AcqRel);
            }
            // Its visit went to PostgreSQL (see the slide writer).
            SlideOutcome::Gone => self.drop_copy(&slide.entry),
            SlideOutcome::Failed => {}
        }
    }

    /// Drops `entry` if the cache still holds that very copy.
    fn drop_copy(&self, entry: &Arc<Entry>) {
        if let Some(e) = self.entries.get(&entry.uuid) {
            if Arc::ptr_eq(&e, entry) {
                self.entries.invalidate(&entry.uuid);
            }
        }
    }

    /// Stops serving and empties the cache: it can no longer hear about
    /// changes (`reason`, see [`FlushReason`](super::FlushReason)).
    pub fn stop_serving(&self, reason: FlushReason) {
        self.live.store(false, Ordering::SeqCst);
        self.flush(reason);
    }

    /// Serves again, empty: tracking is on, and nothing from before it
    /// was turned on is kept.
    pub fn start_serving(&self) {
        self.clear();
        self.live.store(true, Ordering::SeqCst);
    }

    /// Empties the cache (for `reason`, see [`FlushReason`](super::FlushReason)).
    pub fn flush(&self, reason: FlushReason) {
        self.clear();
        self.metrics.flushed(reason);
    }

    /// Empties the cache and voids every ticket.
    fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.fills.clear();
        self.entries.invalidate_all();
    }

    /// The metrics it records in.
    pub fn metrics(&self) -> &NearMetrics {
        &self.metrics
    }

    /// Takes every pending slide (the visits they write are read now, and
    /// a hit after this queues the session again).
    pub fn take_slides(&self) -> Vec<PendingSlide> {
        self.slides.take_all()
    }

    /// Takes the slides due at `now`.
    pub fn take_due_slides(&self, now: Instant) -> Vec<PendingSlide> {
        self.slides.take_due(now)
    }

    /// Takes the pending slide of session `uuid`, if any.
    pub fn take_slide(&self, uuid: Uuid) -> Option<PendingSlide> {
        self.slides.take(uuid)
    }

    /// The visit session `uuid`'s pending slide would write, leaving it
    /// queued (for PostgreSQL while Redis is away: the slide still goes to
    /// Redis when it is back).
    pub fn pending_visit(&self, uuid: Uuid) -> Option<i64> {
        self.slides.pending_visit(uuid)
    }

    /// Fills in flight (tickets issued and not yet used or given back).
    pub fn fills_in_flight(&self) -> usize {
        self.fills.len()
    }

    /// Pending slides, and the places in their queue (at most twice as
    /// many, plus a constant).
    pub fn slide_backlog(&self) -> (usize, usize) {
        self.slides.backlog()
    }

    /// Queues `slide` again (its write failed or was cancelled); `false`
    /// when the queue had no room (the caller hands its visit on).
    pub fn retry(&self, slide: &PendingSlide) -> bool {
        self.queue_slide(&slide.entry)
    }

    /// Sessions held (approximately: evictions are applied lazily), the
    /// bytes they weigh, fills in flight and slides pending; also brings
    /// the gauges up to date.
    pub fn sizes(&self) -> Sizes {
        self.entries.run_pending_tasks();
        let sizes = Sizes {
            entries: self.entries.entry_count(),
            bytes: self.bytes.load(Ordering::Relaxed).max(0),
            fills: self.fills_in_flight(),
            pending: self.slide_backlog().0,
        };
        self.metrics.sizes(&sizes);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::session::Profile;
    use crate::store::near::FlushReason;
    use std::time::Duration;

    use crate::clock::Timestamp;
    use crate::domain::session::Limits;
    use crate::domain::skey::SkeyHash;
    use crate::store::near::settings::SLIDE_CAP;

    const DAY: u32 = 86_400;

    fn creds(uuid: Uuid, skey: u8, now: i64) -> Credentials {
        Credentials {
            uuid,
            skey_hash: SkeyHash([skey; 32]),
            app_id: 7,
            limits: Limits::new(30, DAY),
            now: Timestamp(now),
        }
    }

    fn profile() -> Arc<Profile> {
        Arc::new(Profile {
            open_id: "o1".into(),
            union_id: None,
            user_info: None,
            phone_number: None,
        })
    }

    fn live() -> NearCache {
        let near = NearCache::new(NearSettings::DEFAULT, NearMetrics::default());
        near.start_serving();
        near
    }

    /// Fills `uuid` (skey 1) as Redis answered at `now`.
    fn filled(near: &NearCache, uuid: Uuid, now: i64) {
        let t = near.ticket(&creds(uuid, 1, now)).expect("a ticket");
        near.fill(
            t,
            Entry::new(
                uuid,
                7,
                SkeyHash([1; 32]),
                1,
                now,
                now,
                Some(now),
                profile(),
            ),
        );
    }

    /// Fills `u` at 1 s and accepts it at 2 s (a hit, so a slide is pending).
    fn in_use(near: &NearCache, u: Uuid) {
        filled(near, u, 1_000);
        assert!(matches!(
            near.lookup(&creds(u, 1, 2_000)),
            Lookup::Accept(_)
        ));
    }

    #[test]
    fn a_copy_accepts_its_skey_and_refuses_another() {
        let near = live();
        let u = Uuid::new_v4();
        in_use(&near, u);
        assert!(matches!(near.lookup(&creds(u, 2, 2_000)), Lookup::Refuse));
        let mut other_app = creds(u, 1, 2_000);
        other_app.app_id = 8;
        assert!(matches!(near.lookup(&other_app), Lookup::Refuse));
        assert!(matches!(
            near.lookup(&creds(Uuid::new_v4(), 1, 2_000)),
            Lookup::Ask
        ));
    }

    #[test]
    fn an_expiry_seen_only_here_is_asked_of_redis() {
        let near = live();
        let u = Uuid::new_v4();
        filled(&near, u, 0);
        let day_ms = i64::from(DAY) * 1_000;
        assert!(matches!(near.lookup(&creds(u, 1, day_ms)), Lookup::Ask));
        // A wrong skey is still refused, expired or not.
        assert!(matches!(near.lookup(&creds(u, 2, day_ms)), Lookup::Refuse));
    }

    #[test]
    fn a_copy_whose_slides_lag_half_a_session_is_asked_of_redis() {
        let near = live();
        let u = Uuid::new_v4();
        filled(&near, u, 0);
        let half = i64::from(DAY) * 500;
        // SlideReply here every hour, never written: accepted until half a
        // session behind Redis, then asked.
        let mut now = 0;
        while now + 3_600_000 < half {
            now += 3_600_000;
            assert!(matches!(near.lookup(&creds(u, 1, now)), Lookup::Accept(_)));
        }
        assert!(matches!(near.lookup(&creds(u, 1, half)), Lookup::Ask));
        let slide = near
            .take_slide(u)
            .expect("its pending slide, written first");
        assert_eq!(slide.visited, now, "the newest visit");
        near.slid(&slide, SlideOutcome::Written);
        assert!(matches!(near.lookup(&creds(u, 1, half)), Lookup::Accept(_)));
    }

    #[test]
    fn an_invalidation_during_a_fill_voids_it() {
        let near = live();
        let u = Uuid::new_v4();
        let t = near.ticket(&creds(u, 1, 0)).unwrap();
        near.invalidate(u);
        near.fill(
            t,
            Entry::new(u, 7, SkeyHash([1; 32]), 1, 0, 0, Some(0), profile()),
        );
        assert!(matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask));
    }

    #[test]
    fn a_flush_during_a_fill_voids_it_and_a_dark_cache_serves_nothing() {
        let near = live();
        let u = Uuid::new_v4();
        let t = near.ticket(&creds(u, 1, 0)).unwrap();
        near.stop_serving(FlushReason::Lost);
        near.start_serving();
        near.fill(
            t,
            Entry::new(u, 7, SkeyHash([1; 32]), 1, 0, 0, Some(0), profile()),
        );
        assert!(matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask));

        filled(&near, u, 0);
        near.stop_serving(FlushReason::Lost);
        assert!(matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask));
        assert!(
            near.ticket(&creds(u, 1, 1)).is_none(),
            "no fills while dark"
        );
        near.start_serving();
        assert!(
            matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask),
            "emptied"
        );
    }

    #[test]
    fn a_later_ticket_wins_and_an_earlier_one_fills_nothing() {
        let near = live();
        let u = Uuid::new_v4();
        let first = near.ticket(&creds(u, 1, 0)).unwrap();
        let second = near.ticket(&creds(u, 2, 0)).unwrap();
        near.fill(
            second,
            Entry::new(u, 7, SkeyHash([2; 32]), 1, 0, 0, Some(0), profile()),
        );
        near.fill(
            first,
            Entry::new(u, 7, SkeyHash([1; 32]), 1, 0, 0, Some(0), profile()),
        );
        assert!(matches!(near.lookup(&creds(u, 2, 1)), Lookup::Accept(_)));
    }

    #[test]
    fn hits_queue_one_slide_per_session_with_the_newest_visit() {
        let near = live();
        let u = Uuid::new_v4();
        filled(&near, u, 1_000);
        for now in [2_000, 3_000, 4_000] {
            assert!(matches!(near.lookup(&creds(u, 1, now)), Lookup::Accept(_)));
        }
        let slides = near.take_slides();
        assert_eq!(slides.len(), 1);
        assert_eq!(slides[0].visited, 4_000);
        near.slid(&slides[0], SlideOutcome::Written);
        assert!(near.take_slides().is_empty(), "written: nothing queued");
        assert!(matches!(
            near.lookup(&creds(u, 1, 5_000)),
            Lookup::Accept(_)
        ));
        assert_eq!(near.take_slides()[0].visited, 5_000);
    }

    #[test]
    fn short_sessions_are_never_served_here() {
        let near = live();
        let u = Uuid::new_v4();
        let mut c = creds(u, 1, 0);
        c.limits = Limits::new(30, 9); // under 10 slide intervals of 1 s (the floor)
        assert!(near.ticket(&c).is_none());
        assert!(matches!(near.lookup(&c), Lookup::Ask));
    }

    #[test]
    fn each_slide_is_due_after_an_interval_and_within_one_and_a_half() {
        let near = live();
        let start = Instant::now();
        let sessions: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
        for u in &sessions {
            in_use(&near, *u);
        }
        // A one-day session: 1% is 864 s, capped at 5 min.
        let slide = SLIDE_CAP;
        assert!(
            near.take_due_slides(start + slide - Duration::from_millis(100))
                .is_empty()
        );
        // Spread: some due by an interval and a quarter, not all.
        let early = near.take_due_slides(start + slide * 5 / 4).len();
        assert!(early > 20 && early < 180, "{early} of 200");
        let rest = near
            .take_due_slides(start + slide * 3 / 2 + Duration::from_secs(1))
            .len();
        assert_eq!(early + rest, 200, "all within one and a half");
    }

    #[test]
    fn a_slide_that_finds_the_session_changed_drops_the_copy() {
        let near = live();
        let u = Uuid::new_v4();
        in_use(&near, u);
        let slide = near.take_slide(u).expect("queued by the hit");
        assert!(near.take_slide(u).is_none(), "one per session");
        near.slid(&slide, SlideOutcome::Gone);
        assert!(!near.holds(u));
    }

    #[test]
    fn every_push_drops_the_copy_and_answers_it_when_in_use() {
        let near = live();
        let u = Uuid::new_v4();
        let t = near.ticket(&creds(u, 1, 0)).unwrap();
        // Fetched again after a change: not in use until an auth uses it.
        near.fill(
            t,
            Entry::new(u, 7, SkeyHash([1; 32]), 1, 0, 0, None, profile()),
        );
        assert!(near.invalidate(u).is_none());
        filled(&near, u, 0);
        assert!(near.invalidate(u).is_some(), "in use: fetched again");
        assert!(!near.holds(u));
    }

    /// Looks up `n` sessions never seen, filling each after its miss.
    fn misses_then_fills(near: &NearCache, n: u64) -> Vec<Uuid> {
        let sessions: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        for &u in &sessions {
            assert!(matches!(near.lookup(&creds(u, 1, 1_000)), Lookup::Ask));
            if near.ticket(&creds(u, 1, 1_000)).is_some() {
                filled(near, u, 1_000);
            }
        }
        sessions
    }

    #[test]
    fn a_first_fill_stays_and_a_churning_cache_steps_aside_empty() {
        use crate::store::near::admission::WINDOW;
        let settings = NearSettings {
            max_entries: WINDOW,
            max_bytes: 1 << 30,
            slide: NearSettings::DEFAULT.slide,
        };
        let near = NearCache::new(settings, NearMetrics::default());
        near.start_serving();
        // A window of misses that fill it to the brim, evicting nothing:
        // it is filling for the first time, not churning.
        misses_then_fills(&near, WINDOW);
        assert!(!near.is_aside());
        assert!(near.sizes().entries > WINDOW * 9 / 10);
        // A window of misses of yet other sessions, each pushing out a copy
        // never used: aside, and emptied.
        let second = misses_then_fills(&near, WINDOW);
        assert!(near.is_aside());
        assert!(second.iter().all(|u| !near.holds(*u)));
        let u = Uuid::new_v4();
        assert!(near.passes(u));
        assert!(near.ticket(&creds(u, 1, 1_000)).is_none());
    }

    #[test]
    fn the_bounds_hold() {
        let settings = NearSettings {
            max_entries: 100,
            max_bytes: 1 << 30,
            slide: NearSettings::DEFAULT.slide,
        };
        let near = NearCache::new(settings, NearMetrics::default());
        near.start_serving();
        for _ in 0..1_000 {
            filled(&near, Uuid::new_v4(), 0);
        }
        let entries = near.sizes().entries;
        // Held to the bound, and filled up to it: a cache that admitted
        // nothing would also hold at most 100.
        assert!((90..=100).contains(&entries), "{entries} entries");
        let settings = NearSettings {
            max_entries: 1_000_000,
            max_bytes: 64 * 1024,
            slide: NearSettings::DEFAULT.slide,
        };
        let near = NearCache::new(settings, NearMetrics::default());
        near.start_serving();
        for _ in 0..1_000 {
            filled(&near, Uuid::new_v4(), 0);
        }
        let Sizes { entries, bytes, .. } = near.sizes();
        assert!((48 * 1024..=64 * 1024).contains(&bytes), "{bytes} bytes");
        assert!(entries > 0 && entries < 1_000);
    }
}
