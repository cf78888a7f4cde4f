//! The near cache: hot sessions in process, in front of Redis, so that an
//! auth of a session seen a moment ago costs no round trip.
//!
//! It holds copies of what Redis answered, and Redis tells it what changed
//! (see `redis/tracking.rs`: every session key is tracked, and any write to
//! one by anyone but this instance drops the copy here). The rules that keep
//! it from ever accepting what Redis would refuse:
//!
//! 1. **Serve only while listening.** Entries are served only while the
//!    tracking connection is known to be up with tracking on (`live`).
//!    Losing it, a reconnect, tracking found off, a missed invalidation
//!    (the channel lagged) or a failed heartbeat empty the cache at once
//!    ([`NearCache::go_dark`]); it fills again only once tracking is back.
//! 2. **Fill only with what is still true.** A copy is made from a Redis
//!    reply on the tracked connection, and only if no invalidation of that
//!    session and no flush came between asking and answering (a ticket per
//!    fill, [`NearCache::ticket`]): a write that raced the read can never
//!    leave its old value behind. A copy in use that a change dropped is
//!    fetched again the same way, without writing (most changes are
//!    slides, which change nothing an auth answers; a removal fetches
//!    nothing back).
//! 3. **Accept only what Redis would accept.** Same app, same skey hash
//!    (constant time), and alive by the copy's own times under the app's
//!    current limits. A wrong app or skey against a copy is refused: Redis
//!    holds the same, as far as it has said.
//! 4. **Unsure goes to Redis.** An expiry seen only in the copy is a miss
//!    (another instance may have slid the session), never a refusal; so is
//!    a copy whose slides have not reached Redis for half a session (a
//!    stuck slide writer must not let Redis' copy run out), and so is every
//!    session of an app whose `session_duration` is under
//!    [`MIN_SESSION_SLIDES`] slide intervals.
//! 5. **Slides reach Redis.** A hit slides the copy in process and queues
//!    it (one pending slide per session), due between one and one and a
//!    half intervals later (spread per session), written in pipelined
//!    batches; so a session is written at most once per interval and its
//!    newest visit always is. Redis' copy lags by at most one and a half
//!    intervals, 15% of any session served here, so no other instance sees
//!    it expire early. A fill for an auth is that auth in Redis: its
//!    visit is written there as without the cache, so the copy starts with
//!    nothing to slide (a fill that queued a slide cost a second Redis
//!    call, pure cost for a copy evicted before its next use). Before Redis is asked about a
//!    session, its pending slide is written: Redis never judges by a visit
//!    this instance has held back (but while the cache stands aside, auths
//!    go to Redis without that: [`NearCache::passes`]). A slide that
//!    finds the session gone from Redis hands its visit to PostgreSQL.
//! 6. **Own changes need no push.** This instance drops its copy of a
//!    session it changed before it answers, and goes dark while a write of
//!    its to Redis has failed (see `tiered/near.rs`).
//!
//! Slides (this instance's and every other's) write the session's visit
//! key, which is not tracked: they push nothing, and cost no copy. Every
//! other write to a session comes back as an invalidation, this instance's
//! own too (Redis' `NOLOOP` does not cover writes made in scripts, and
//! broadcast mode merges pushes of one key, so an echo cannot be told from
//! another writer's change): each drops the copy, and a copy in use is
//! fetched again (rule 2). Among those is the session hash's extension,
//! about once per quarter of an active session (`redis/layout.rs`).

pub mod admission;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use dashmap::DashMap;
use uuid::Uuid;

use admission::{Admission, Turn};

use crate::domain::app::AppId;
use crate::domain::session::{Credentials, Profile};
use crate::domain::skey::SkeyHash;
use crate::metrics::{NearMetrics, NearSizes as Sizes};
use crate::store::visit_granularity::VisitGranularity;

/// Sessions of an app are served from the near cache only when its
/// `session_duration` is at least this many slide intervals: Redis' copy
/// then lags a session by at most a tenth of it.
pub const MIN_SESSION_SLIDES: i64 = 10;

/// What a copy costs beyond the text it answers (open_id, union_id,
/// user_info, phone number), bytes: the entry and the profile with their
/// allocations, the cache's bookkeeping, a pending slide. Measured by
/// `examples/near_bytes` (process RSS per copy, a million copies, each with
/// a slide pending): 1,129 bytes a copy with 383 bytes of text.
pub const COPY_OVERHEAD: usize = 746;

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
    /// Default: one million sessions, 1.25 GiB (a million copies of
    /// sessions with a ~330-byte user_info: [`COPY_OVERHEAD`]; larger ones
    /// are bounded by the bytes first), slides every 1% of the app's
    /// `session_duration`, between 1 s and 5 min (a 30-day session's copy
    /// in Redis lags its last visit by at most 5 minutes, a one-hour
    /// session's by 36 s).
    pub const DEFAULT: NearSettings = NearSettings {
        max_entries: 1_000_000,
        max_bytes: 1280 * 1024 * 1024,
        slide: VisitGranularity::ShareOfSession(0.01),
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

/// A copy of a session as Redis answered it, slid here since.
#[derive(Debug)]
pub struct Entry {
    /// The session.
    pub uuid: Uuid,
    /// Its app.
    pub app: AppId,
    /// SHA-256 of its skey.
    pub skey_hash: SkeyHash,
    /// Login time, ms.
    pub created: i64,
    /// Last visit accepted anywhere this instance knows of, ms.
    visited: AtomicI64,
    /// Last visit Redis holds (as far as this instance wrote or read), ms.
    written: AtomicI64,
    /// In the slide queue.
    queued: AtomicBool,
    /// In use: filled for an auth, or accepted since.
    used: AtomicBool,
    /// Answered an auth from the cache at least once (a copy evicted
    /// without it was a fill that only churned the cache).
    hit: AtomicBool,
    /// The session's generation in Redis when copied.
    pub generation: i64,
    /// Its slide interval, ms (set when it is filled).
    slide_ms: AtomicI64,
    /// What an auth answers.
    pub profile: Arc<Profile>,
    /// Bytes charged against the cache's bound.
    weight: u32,
}

impl Entry {
    /// A copy of session `uuid` as Redis holds it (`created`, `written`
    /// its last visit there), made for an auth at `visit` (in use from the
    /// start), or fetched again after a change (`None`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        uuid: Uuid,
        app: AppId,
        skey_hash: SkeyHash,
        generation: i64,
        created: i64,
        written: i64,
        visit: Option<i64>,
        profile: Arc<Profile>,
    ) -> Self {
        let text = profile.open_id.len()
            + profile.union_id.as_ref().map_or(0, |s| s.len())
            + profile.user_info.as_ref().map_or(0, |s| s.len())
            + profile.phone_number.as_ref().map_or(0, |s| s.len());
        let bytes = text + COPY_OVERHEAD;
        Entry {
            uuid,
            app,
            skey_hash,
            created,
            visited: AtomicI64::new(visit.unwrap_or(written).max(written)),
            written: AtomicI64::new(written),
            queued: AtomicBool::new(false),
            used: AtomicBool::new(visit.is_some()),
            hit: AtomicBool::new(false),
            generation,
            slide_ms: AtomicI64::new(0),
            profile,
            weight: u32::try_from(bytes).unwrap_or(u32::MAX),
        }
    }

    /// The newest visit, ms.
    pub fn visited(&self) -> i64 {
        self.visited.load(Ordering::Acquire)
    }
}

/// Pending slides: the copy whose visit to write, per session, and when
/// each is due (soonest first). A slide taken early (before Redis was
/// asked) leaves its place in `order` behind; such places are skipped when
/// they come up, and `order` is rebuilt when they outnumber the live ones,
/// so it never grows past twice the pending slides.
#[derive(Default)]
struct SlideQueue {
    pending: HashMap<Uuid, (Arc<Entry>, Instant)>,
    order: BinaryHeap<Reverse<(Instant, Uuid)>>,
}

impl SlideQueue {
    /// Drops the places of slides taken early once they are most of `order`.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.pending.len() + 1_024 {
            self.order = self
                .pending
                .iter()
                .map(|(u, (_, at))| Reverse((*at, *u)))
                .collect();
        }
    }
}

/// How writing a slide ended, as the near cache needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlideEnd {
    /// Redis wrote it.
    Written,
    /// Redis wrote nothing: it held a later visit.
    Unchanged,
    /// Redis no longer holds the session as copied.
    Gone,
    /// The write failed; whether it was applied is unknown.
    Failed,
}

/// A slide to write to Redis: the session's copy and the visit to write.
#[derive(Debug, Clone)]
pub struct PendingSlide {
    /// The copy.
    pub entry: Arc<Entry>,
    /// The visit to write, ms.
    pub visited: i64,
}

/// What the near cache says of a check.
#[derive(Debug)]
pub enum Lookup {
    /// Accepted (and slid here).
    Accept(Arc<Profile>),
    /// Refused: the copy names another app or skey.
    Refuse,
    /// Ask Redis (no copy, not listening, or the copy is unsure), after
    /// writing the session's pending slide.
    Ask,
}

/// The right to fill one session's copy from one Redis answer; void if an
/// invalidation of it or a flush comes first. Dropped unused (Redis
/// refused, failed, or the request was cancelled while it asked), it gives
/// itself back: tickets never outlive their request.
pub struct Ticket<'a> {
    cache: &'a NearCache,
    uuid: Uuid,
    id: u64,
    epoch: u64,
    slide_ms: i64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // A later ticket of the same session is left alone.
        self.cache
            .fills
            .remove_if(&self.uuid, |_, id| *id == self.id);
    }
}

/// Why the near cache was emptied (the `reason` of its flush metric).
pub mod flush_reason {
    /// The tracking connection failed or closed.
    pub const LOST: &str = "connection_lost";
    /// The tracking connection came back (invalidations may be missed).
    pub const RECONNECT: &str = "reconnect";
    /// The heartbeat found tracking off, or failed.
    pub const HEARTBEAT: &str = "heartbeat";
    /// More invalidations came than were read in time.
    pub const LAGGED: &str = "lagged";
    /// wafer is stopping.
    pub const CLOSE: &str = "close";
    /// A write of this instance to Redis failed (Redis may keep what it
    /// replaced), or the pool that writes is down: copies could outlive a
    /// change this instance acknowledged.
    pub const WRITE_FAILED: &str = "write_failed";
    /// The Redis Cluster's layout changed (a primary joined, left or
    /// took slots): tracking must be proven on the new layout.
    pub const LAYOUT: &str = "layout";
    /// It stood aside: full and mostly missing (see `admission`).
    pub const ASIDE: &str = "aside";
    /// Every reason, for registering the series.
    pub const ALL: [&str; 8] = [
        LOST,
        RECONNECT,
        HEARTBEAT,
        LAGGED,
        CLOSE,
        WRITE_FAILED,
        LAYOUT,
        ASIDE,
    ];
}

/// The near cache of one instance. See the module documentation for its
/// rules.
pub struct NearCache {
    entries: moka::sync::Cache<Uuid, Arc<Entry>>,
    /// In-flight fills: the ticket that may fill each session.
    fills: DashMap<Uuid, u64>,
    next_ticket: AtomicU64,
    /// Bumped by every flush: tickets from before it are void.
    epoch: AtomicU64,
    live: AtomicBool,
    /// Pending slides, one per session, oldest first.
    slides: Mutex<SlideQueue>,
    bytes: Arc<AtomicI64>,
    /// Copies evicted for room before they answered any auth.
    wasted: Arc<AtomicU64>,
    settings: NearSettings,
    metrics: NearMetrics,
    /// Whether misses fill it (not while it does not pay).
    admission: Admission,
}

impl NearCache {
    /// An empty, dark near cache (it serves once [`NearCache::go_live`]).
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
            slides: Mutex::new(SlideQueue::default()),
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

    /// Whether an auth of session `uuid` goes straight to Redis, past the
    /// cache, as without it: while it stands aside (see [`admission`]).
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

    /// Queues `e`'s slide (one per session); `false` when the queue is
    /// full. Pending slides count against the cache's entry bound: each
    /// holds its copy, which may have been evicted since.
    fn queue_slide(&self, e: &Arc<Entry>) -> bool {
        // A load first: most hits find it queued, and a swap on every hit
        // would bounce the entry's cache line between cores.
        if e.queued.load(Ordering::Acquire) || e.queued.swap(true, Ordering::AcqRel) {
            return true;
        }
        let Ok(mut q) = self.slides.lock() else {
            e.queued.store(false, Ordering::Release);
            return false;
        };
        if let Some((queued, _)) = q.pending.get_mut(&e.uuid) {
            // A later copy's visit is the later one; the session keeps its
            // place.
            *queued = e.clone();
            return true;
        }
        if q.pending.len() as u64 >= self.settings.max_entries.max(1) {
            e.queued.store(false, Ordering::Release);
            return false;
        }
        // Due between one and one and a half intervals from now, by a
        // share fixed per session (its uuid is random): the sessions first
        // seen together, as after a restart, are not written in one burst
        // every interval.
        let slide = e.slide_ms.load(Ordering::Relaxed).max(2);
        let slide = Duration::from_millis(u64::try_from(slide).unwrap_or(0));
        let share = f64::from(e.uuid.as_u128() as u16) / f64::from(u16::MAX);
        let at = Instant::now() + slide + (slide / 2).mul_f64(share);
        q.pending.insert(e.uuid, (e.clone(), at));
        q.order.push(Reverse((at, e.uuid)));
        true
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

    /// Counts a lookup the cache answered (`hit`) or sent on to Redis,
    /// and steps aside when a window of them says so.
    fn looked_up(&self, hit: bool) {
        // Churning: full, and at least half the window's misses pushed
        // out a copy that never answered an auth. A cache filling for the
        // first time (its misses cold, nothing evicted) is not.
        let churning = |misses: u64| {
            // Evictions are counted as moka catches up: once per window.
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
                self.flush(flush_reason::ASIDE);
                self.metrics.aside(true);
                tracing::warn!(
                    hit_ratio = ratio,
                    "near cache full and mostly missing: emptied, auths go straight to Redis \
                     as without it until a sample of the sessions in use says they would fit"
                );
            }
            Turn::Back(ratio) => {
                self.metrics.aside(false);
                tracing::info!(estimated_hit_ratio = ratio, "near cache fills again");
            }
        }
    }

    /// Whether the cache stands aside (its misses do not fill it).
    pub fn is_aside(&self) -> bool {
        self.admission.is_aside()
    }

    /// Whether the slide queue has room for another session.
    fn slides_have_room(&self) -> bool {
        self.slides
            .lock()
            .is_ok_and(|q| (q.pending.len() as u64) < self.settings.max_entries.max(1))
    }

    /// The right to fill `creds`' session from the Redis answer about to be
    /// asked for; `None` when the cache would not serve it anyway, could
    /// not hold its slide, or stands aside (see [`admission`]).
    pub fn ticket(&self, creds: &Credentials) -> Option<Ticket<'_>> {
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
        Some(Ticket {
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
    pub fn fill(&self, ticket: Ticket<'_>, entry: Entry) -> Option<PendingSlide> {
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
    pub fn slid(&self, slide: &PendingSlide, end: SlideEnd) {
        match end {
            SlideEnd::Written | SlideEnd::Unchanged => {
                slide
                    .entry
                    .written
                    .fetch_max(slide.visited, Ordering::AcqRel);
            }
            // Its visit went to PostgreSQL (see the slide writer).
            SlideEnd::Gone => self.drop_copy(&slide.entry),
            SlideEnd::Failed => {}
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
    /// changes (`reason`, one of [`flush_reason`]).
    pub fn go_dark(&self, reason: &'static str) {
        self.live.store(false, Ordering::SeqCst);
        self.flush(reason);
    }

    /// Serves again, empty: tracking is on, and nothing from before it
    /// was turned on is kept.
    pub fn go_live(&self) {
        self.clear();
        self.live.store(true, Ordering::SeqCst);
    }

    /// Empties the cache (for `reason`, one of [`flush_reason`]).
    pub fn flush(&self, reason: &'static str) {
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
        let queued = match self.slides.lock() {
            Ok(mut q) => {
                q.order.clear();
                std::mem::take(&mut q.pending)
            }
            Err(_) => return Vec::new(),
        };
        queued
            .into_values()
            .map(|(e, _)| Self::pending(e))
            .collect()
    }

    /// Takes the slides due at `now`.
    pub fn take_due_slides(&self, now: Instant) -> Vec<PendingSlide> {
        let mut due = Vec::new();
        if let Ok(mut q) = self.slides.lock() {
            while let Some(&Reverse((at, uuid))) = q.order.peek() {
                if at > now {
                    break;
                }
                q.order.pop();
                // Absent, or queued again since, when written early
                // (before Redis was asked): that place is stale.
                if q.pending.get(&uuid).is_some_and(|(_, due)| *due == at) {
                    if let Some((entry, _)) = q.pending.remove(&uuid) {
                        due.push(entry);
                    }
                }
            }
        }
        due.into_iter().map(Self::pending).collect()
    }

    /// Takes the pending slide of session `uuid`, if any.
    pub fn take_slide(&self, uuid: Uuid) -> Option<PendingSlide> {
        let mut q = self.slides.lock().ok()?;
        let (entry, _) = q.pending.remove(&uuid)?;
        q.compact();
        drop(q);
        Some(Self::pending(entry))
    }

    /// The visit session `uuid`'s pending slide would write, leaving it
    /// queued (for PostgreSQL while Redis is away: the slide still goes to
    /// Redis when it is back).
    pub fn pending_visit(&self, uuid: Uuid) -> Option<i64> {
        let q = self.slides.lock().ok()?;
        q.pending.get(&uuid).map(|(e, _)| e.visited())
    }

    /// Fills in flight (tickets issued and not yet used or given back).
    pub fn fills_in_flight(&self) -> usize {
        self.fills.len()
    }

    /// Pending slides, and the places in their queue (at most twice as
    /// many, plus a constant).
    pub fn slide_backlog(&self) -> (usize, usize) {
        self.slides
            .lock()
            .map(|q| (q.pending.len(), q.order.len()))
            .unwrap_or_default()
    }

    fn pending(entry: Arc<Entry>) -> PendingSlide {
        entry.queued.store(false, Ordering::Release);
        let visited = entry.visited();
        PendingSlide { entry, visited }
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
    use crate::clock::Timestamp;
    use crate::domain::session::Limits;

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
        near.go_live();
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
        // Slid here every hour, never written: accepted until half a
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
        near.slid(&slide, SlideEnd::Written);
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
        near.go_dark(flush_reason::LOST);
        near.go_live();
        near.fill(
            t,
            Entry::new(u, 7, SkeyHash([1; 32]), 1, 0, 0, Some(0), profile()),
        );
        assert!(matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask));

        filled(&near, u, 0);
        near.go_dark(flush_reason::LOST);
        assert!(matches!(near.lookup(&creds(u, 1, 1)), Lookup::Ask));
        assert!(
            near.ticket(&creds(u, 1, 1)).is_none(),
            "no fills while dark"
        );
        near.go_live();
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
        near.slid(&slides[0], SlideEnd::Written);
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
        near.slid(&slide, SlideEnd::Gone);
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
        use admission::WINDOW;
        let settings = NearSettings {
            max_entries: WINDOW,
            max_bytes: 1 << 30,
            slide: NearSettings::DEFAULT.slide,
        };
        let near = NearCache::new(settings, NearMetrics::default());
        near.go_live();
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
        near.go_live();
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
        near.go_live();
        for _ in 0..1_000 {
            filled(&near, Uuid::new_v4(), 0);
        }
        let Sizes { entries, bytes, .. } = near.sizes();
        assert!((48 * 1024..=64 * 1024).contains(&bytes), "{bytes} bytes");
        assert!(entries > 0 && entries < 1_000);
    }
}
