//! The tiered store's near cache at work: the copies (`store::near`) kept
//! true by Redis' invalidations (`redis::tracking`), a heartbeat that
//! proves tracking is on, and the writer of held-back slides.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;

use super::TieredStore;
use crate::domain::app::AppRef;
use crate::domain::session::Credentials;
use crate::store::StoreResult;
use crate::store::near::{
    Entry, Lookup, NearCache, NearSettings, PendingSlide, SlideEnd, Ticket, flush_reason,
};
use crate::store::redis::{AuthOutcome, Slid, Slide, Tracked, Tracking, TrackingEvent};

/// How often tracking is proven on every node. A connection lost without a
/// word (a partition) empties the cache at most this plus the Redis
/// timeout after it happened.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// Most slides sent at once.
const SLIDE_BATCH: usize = 256;
/// Dropped copies waiting to be fetched again; past it, they are not.
const REFILL_QUEUE: usize = 16_384;
/// Most copies fetched again at once.
const REFILL_BATCH: usize = 256;

/// The near cache and its line to Redis.
pub struct Near {
    cache: Arc<NearCache>,
    tracked: Tracked,
    /// Wakes the heartbeat early: tracking was lost and may come back.
    wake: Arc<Notify>,
    /// Closed: the heartbeat no longer turns tracking on.
    closed: AtomicBool,
    /// Losses of the tracking connection heard so far: tracking turned on
    /// across one (the connection may be a new one, without it) does not
    /// count.
    losses: Arc<AtomicU64>,
    /// Sessions whose slide is being written, and a signal when one is.
    writing: Mutex<HashSet<Uuid>>,
    wrote: Notify,
}

impl Near {
    /// A near cache over `tracked`, dark until the heartbeat turns
    /// tracking on.
    pub fn new(
        tracked: Tracked,
        settings: NearSettings,
        metrics: &crate::metrics::StoreMetrics,
    ) -> Self {
        Near {
            cache: Arc::new(NearCache::new(settings, metrics.near())),
            tracked,
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            losses: Arc::new(AtomicU64::new(0)),
            writing: Mutex::new(HashSet::new()),
            wrote: Notify::new(),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &NearCache {
        &self.cache
    }

    /// Sessions whose slide is being written now.
    pub fn being_written(&self) -> usize {
        self.writing.lock().map_or(0, |w| w.len())
    }

    /// What the cache says of `creds`.
    pub fn lookup(&self, creds: &Credentials) -> Lookup {
        self.cache.lookup(creds)
    }

    /// Asks Redis about a session the cache could not answer, and fills
    /// the cache from an acceptance (unless a change or a flush came in
    /// between). A session the cache would not hold is asked the usual way
    /// (the auth slides it in Redis).
    pub async fn ask(
        &self,
        store: &TieredStore,
        creds: &Credentials,
        granularity_ms: i64,
    ) -> StoreResult<AuthOutcome> {
        let Some(ticket) = self.cache.ticket(creds) else {
            return store.redis.authenticate(creds, granularity_ms).await;
        };
        let (outcome, unqueued) = self.fetch(ticket, creds, granularity_ms, true).await;
        if outcome.is_err() {
            // Not answered on a tracked node (its slot moved, or is
            // moving): the pool answers, and the heartbeat looks at the
            // layout now.
            self.wake.notify_one();
            return store.redis.authenticate(creds, granularity_ms).await;
        }
        // Redis slid the session as it answered: the copy starts with its
        // visit written (a slide the queue had no room for is written now).
        if let Some(slide) = unqueued {
            self.write_all(store, vec![slide]).await;
        }
        outcome
    }

    /// Asks Redis about the session and fills the copy under `ticket`;
    /// `visit`: the copy is made for an auth now (checked and slid in
    /// Redis as that auth, and in use), not fetched again after a change
    /// (only read). Answers, beside the outcome, a slide the queue had no
    /// room for (to write at once).
    async fn fetch(
        &self,
        ticket: Ticket<'_>,
        creds: &Credentials,
        granularity_ms: i64,
        visit: bool,
    ) -> (StoreResult<AuthOutcome>, Option<PendingSlide>) {
        let outcome = self.tracked.fetch(creds, granularity_ms, !visit).await;
        // Any other answer drops the ticket, which gives it back.
        let unqueued = match &outcome {
            Ok(AuthOutcome::Accepted(profile, v)) => self.cache.fill(
                ticket,
                Entry::new(
                    creds.uuid,
                    creds.app_id,
                    creds.skey_hash,
                    v.generation,
                    v.created,
                    v.visited,
                    visit.then_some(creds.now.0),
                    profile.clone(),
                ),
            ),
            _ => None,
        };
        (outcome, unqueued)
    }

    /// Starts the work that keeps the cache true: the events (changes,
    /// losses), the heartbeat and the slide writer. Each stops once the
    /// store is dropped.
    pub fn spawn(store: &Arc<TieredStore>) {
        let Some(near) = &store.near else { return };
        let mut events = near.tracked.events();
        let cache = near.cache.clone();
        let wake = near.wake.clone();
        let losses = near.losses.clone();
        let (refill, refills) = tokio::sync::mpsc::channel(REFILL_QUEUE);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    TrackingEvent::Invalidated(uuids) => {
                        for uuid in uuids {
                            if let Some(dropped) = cache.invalidate(uuid) {
                                // Full: the next auth fills it instead.
                                let _ = refill.try_send(dropped);
                            }
                        }
                    }
                    TrackingEvent::Lost(reason) => {
                        losses.fetch_add(1, Ordering::SeqCst);
                        // Dark already: nothing served to flush.
                        if cache.is_live() {
                            cache.go_dark(reason);
                            tracing::warn!(
                                reason,
                                "near cache emptied: Redis' tracking of sessions was lost; \
                                 auths go to Redis until it is back"
                            );
                        }
                        wake.notify_one();
                    }
                }
            }
        });
        let weak = Arc::downgrade(store);
        tokio::spawn(refill_dropped(weak.clone(), refills));
        tokio::spawn(heartbeat(weak.clone(), near.wake.clone()));
        // Each slide is due within its interval after it became pending;
        // rounds often enough to write it then.
        let period = near.cache.settings().writer_period();
        crate::store::periodic::spawn_every(store, period, |s| async move {
            if let Some(near) = &s.near {
                near.write_due_slides(&s).await;
            }
        });
    }

    /// With Redis away: hands session `creds.uuid`'s pending visit to
    /// PostgreSQL's write-behind (what the auth then reads), leaving the
    /// slide queued, in its place, for Redis' return.
    pub fn hand_to_postgres(&self, store: &TieredStore, creds: &Credentials) {
        if let Some(visited) = self.cache.pending_visit(creds.uuid) {
            store
                .visits
                .record(creds.uuid, crate::clock::Timestamp(visited));
        }
    }

    /// Writes session `creds.uuid`'s pending slide now, if it has one:
    /// Redis is about to be asked about it, and must not judge by a visit
    /// this instance held back.
    pub async fn catch_up(&self, store: &TieredStore, creds: &Credentials) {
        let give_up = tokio::time::Instant::now() + store.redis.timeout();
        loop {
            if let Some(slide) = self.cache.take_slide(creds.uuid) {
                self.write_all(store, vec![slide]).await;
                return;
            }
            // Being written by the slide writer: wait for it (a write
            // takes at most the Redis timeout).
            let wrote = self.wrote.notified();
            let busy = self
                .writing
                .lock()
                .map(|w| w.contains(&creds.uuid))
                .unwrap_or(false);
            if !busy || tokio::time::timeout_at(give_up, wrote).await.is_err() {
                return;
            }
        }
    }

    /// Writes the held-back slides to Redis. A visit due for PostgreSQL
    /// goes to the write-behind; a slide that fails is kept for the next
    /// round and its visit handed to the write-behind (PostgreSQL then has
    /// it even if Redis never does).
    pub async fn write_slides(&self, store: &TieredStore) {
        self.write_all(store, self.cache.take_slides()).await;
    }

    /// [`Near::write_slides`] for the slides pending an interval or more.
    async fn write_due_slides(&self, store: &TieredStore) {
        // With Redis away nothing is sent: the client would hold each write
        // until it reconnects, round after round. The slides stay queued
        // (an auth meanwhile hands its visit to PostgreSQL) and go out once
        // Redis is back.
        if !store.redis.is_connected() {
            return;
        }
        let due = self.cache.take_due_slides(std::time::Instant::now());
        self.write_all(store, due).await;
    }

    /// Writes `pending`, a batch at a time. All of them are marked as
    /// being written from the start (a request about to ask Redis waits
    /// for its session's slide, whichever batch holds it), and whatever a
    /// cancellation leaves unwritten is queued again.
    async fn write_all(&self, store: &TieredStore, pending: Vec<PendingSlide>) {
        if pending.is_empty() {
            return;
        }
        let mut in_flight = InFlight::new(self, store, &pending);
        for batch in pending.chunks(SLIDE_BATCH) {
            self.write(store, batch).await;
            in_flight.settled(batch.len());
            // Lets the requests queued on this worker run between batches.
            tokio::task::yield_now().await;
        }
    }

    async fn write(&self, store: &TieredStore, batch: &[PendingSlide]) {
        let apps = store.apps.load();
        let now = store.clock.now().0;
        let mut todo: Vec<(&PendingSlide, Slide<'_>)> = Vec::with_capacity(batch.len());
        for p in batch {
            // An app deleted since: its sessions are gone.
            let Some(app) = apps.get(&AppRef::Id(p.entry.app)) else {
                continue;
            };
            let limits = app.limits();
            todo.push((
                p,
                Slide {
                    uuid: p.entry.uuid,
                    app: p.entry.app,
                    skey_hash: &p.entry.skey_hash,
                    generation: p.entry.generation,
                    visited: p.visited,
                    limits,
                    granularity_ms: store.every.visit.for_session_ms(limits.session_ms),
                    now,
                },
            ));
        }
        let slides: Vec<Slide<'_>> = todo.iter().map(|(_, s)| *s).collect();
        let results = self.tracked.slide(&slides).await;
        let (mut ok, mut gone, mut failed) = (0, 0, 0);
        for (&(p, _), result) in todo.iter().zip(results) {
            let visit = crate::clock::Timestamp(p.visited);
            let end = match result {
                Ok(Slid::Written(due)) => {
                    ok += 1;
                    if due {
                        store.visits.record(p.entry.uuid, visit);
                    }
                    SlideEnd::Written
                }
                Ok(Slid::Unchanged) => {
                    ok += 1;
                    SlideEnd::Unchanged
                }
                Ok(Slid::Gone) => {
                    // Expired in Redis before the slide came, or Redis came
                    // back empty: the visit was accepted, so PostgreSQL
                    // keeps it (it only ever raises a last visit; a removed
                    // session has no row to raise).
                    gone += 1;
                    store.visits.record(p.entry.uuid, visit);
                    SlideEnd::Gone
                }
                Err(_) => {
                    failed += 1;
                    store.visits.record(p.entry.uuid, visit);
                    self.cache.retry(p);
                    SlideEnd::Failed
                }
            };
            self.cache.slid(p, end);
        }
        self.cache.metrics().slides(ok, gone, failed);
    }

    /// Stops serving: a write of this instance to Redis failed, so Redis
    /// may still hold what it replaced (until the repair evicts it), and
    /// this instance must not keep or make copies of it.
    pub fn write_failed(&self) {
        if self.cache.is_live() {
            self.cache.go_dark(flush_reason::WRITE_FAILED);
            tracing::warn!(
                "near cache emptied: a write to Redis failed; it serves again once the \
                 repair has reached Redis"
            );
        }
    }

    /// Stops serving, writes what is held back, closes the connection.
    pub async fn close(&self, store: &TieredStore) {
        self.closed.store(true, Ordering::SeqCst);
        self.cache.go_dark(flush_reason::CLOSE);
        self.write_slides(store).await;
        self.tracked.quit().await;
    }
}

/// Slides being written: their sessions are marked from the start to the
/// end of their write (a request about to ask Redis waits for its own),
/// and if the write is cancelled (the request that wrote a session's slide
/// before asking Redis went away), the rest are queued again, or their
/// visits handed to PostgreSQL when the queue has no room: a visit is never
/// dropped, and no session stays marked.
struct InFlight<'a> {
    near: &'a Near,
    store: &'a TieredStore,
    slides: &'a [PendingSlide],
    settled: usize,
}

impl<'a> InFlight<'a> {
    fn new(near: &'a Near, store: &'a TieredStore, slides: &'a [PendingSlide]) -> Self {
        if let Ok(mut w) = near.writing.lock() {
            w.extend(slides.iter().map(|s| s.entry.uuid));
        }
        InFlight {
            near,
            store,
            slides,
            settled: 0,
        }
    }

    /// The next `n` slides are written (or failed and were handled).
    fn settled(&mut self, n: usize) {
        let end = (self.settled + n).min(self.slides.len());
        self.unmark(self.settled..end);
        self.settled = end;
    }

    fn unmark(&self, range: std::ops::Range<usize>) {
        if let Ok(mut w) = self.near.writing.lock() {
            for s in &self.slides[range] {
                w.remove(&s.entry.uuid);
            }
        }
        self.near.wrote.notify_waiters();
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let rest = self.settled..self.slides.len();
        if rest.is_empty() {
            return;
        }
        for s in &self.slides[rest.clone()] {
            if !self.near.cache.retry(s) {
                self.store
                    .visits
                    .record(s.entry.uuid, crate::clock::Timestamp(s.visited));
            }
        }
        self.unmark(rest);
    }
}

/// Fetches again (without writing) the copies in use that a change
/// dropped, a batch at a time: the answer says what the change was (a
/// slide changes nothing an auth answers; a removal or a new skey fills
/// nothing).
async fn refill_dropped(store: Weak<TieredStore>, mut dropped: Receiver<Arc<Entry>>) {
    let mut batch = Vec::with_capacity(REFILL_BATCH);
    while dropped.recv_many(&mut batch, REFILL_BATCH).await > 0 {
        let Some(store) = store.upgrade() else { return };
        let Some(near) = &store.near else { return };
        let apps = store.apps.load();
        let now = store.clock.now();
        let fetches = batch.drain(..).filter_map(|e| {
            let app = apps.get(&AppRef::Id(e.app))?;
            let creds = Credentials {
                uuid: e.uuid,
                skey_hash: e.skey_hash,
                app_id: e.app,
                limits: app.limits(),
                now,
            };
            let granularity = store.every.visit.for_session_ms(creds.limits.session_ms);
            let ticket = near.cache.ticket(&creds)?;
            Some(async move {
                // Fetched again, not for an auth: nothing to slide.
                let _ = near.fetch(ticket, &creds, granularity, false).await;
            })
        });
        futures::future::join_all(fetches).await;
    }
}

/// Turns tracking on when the cache is dark, proves it on every
/// [`HEARTBEAT`] while it serves, and samples the cache's size.
async fn heartbeat(store: Weak<TieredStore>, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        let Some(store) = store.upgrade() else { return };
        let Some(near) = &store.near else { return };
        if near.closed.load(Ordering::SeqCst) {
            return;
        }
        let cache = &near.cache;
        // This instance's changes must reach Redis before its copies may be
        // trusted: none while the pool cannot write, or a failed write's
        // repair is pending.
        let writable = store.redis.is_connected() && !store.repairs_pending();
        if cache.is_live() {
            let found = if writable {
                near.tracked.check().await
            } else {
                Ok(Tracking::Off)
            };
            let reason = match found {
                Ok(Tracking::On) => None,
                _ if !writable => Some(flush_reason::WRITE_FAILED),
                Ok(Tracking::Moved) => Some(flush_reason::LAYOUT),
                Ok(Tracking::Off) | Err(_) => Some(flush_reason::HEARTBEAT),
            };
            if let Some(reason) = reason {
                cache.go_dark(reason);
                tracing::warn!(
                    reason,
                    "near cache emptied: Redis' tracking of sessions could not be proven on \
                     every primary, or this instance cannot write to Redis; auths go to Redis \
                     until it is back"
                );
                // Turned on again on the new layout at once.
                near.wake.notify_one();
            }
        } else if writable {
            let losses = near.losses.load(Ordering::SeqCst);
            // Live only if no loss came while tracking was turned on (the
            // next heartbeat would catch it, but not at once).
            // And proven as the heartbeat proves it: tracking on on every
            // primary of the layout it was turned on for, each a primary (a
            // connection that came back to a demoted node turns tracking on
            // there just as well).
            let proven = near.tracked.enable().await.is_ok()
                && matches!(near.tracked.check().await, Ok(Tracking::On));
            if proven && near.losses.load(Ordering::SeqCst) == losses {
                // Everything from before tracking was (re)enabled is dropped.
                cache.go_live();
                tracing::info!("near cache serving: Redis tracks the sessions' keys");
            }
        }
        cache.sizes();
    }
}
