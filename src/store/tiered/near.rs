//! The tiered store's near cache at work: the copies (`store::near`) kept
//! true by Redis' invalidations (`redis::tracking`), a heartbeat that
//! proves tracking is on, and the writer of held-back slides.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::Receiver;

use super::TieredStore;
use crate::domain::app::AppRef;
use crate::domain::session::Credentials;
use crate::store::StoreResult;
use crate::store::near::{Entry, Lookup, NearCache, NearSettings, PendingSlide, flush_reason};
use crate::store::redis::{AuthOutcome, Fetch, Slid, Slide, Tracked, TrackingEvent};

/// How often tracking is proven on every node. A connection lost without a
/// word (a partition) empties the cache at most this plus the Redis
/// timeout after it happened.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// Most slides sent at once.
const SLIDE_BATCH: usize = 1_000;
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
}

impl Near {
    /// A near cache over `tracked`, dark until the heartbeat turns
    /// tracking on.
    pub fn new(
        tracked: Tracked,
        settings: NearSettings,
        store: &crate::metrics::StoreMetrics,
    ) -> Self {
        Near {
            cache: Arc::new(NearCache::new(settings, store.near())),
            tracked,
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &NearCache {
        &self.cache
    }

    /// What the cache says of `creds`.
    pub fn lookup(&self, creds: &Credentials) -> Lookup {
        self.cache.lookup(creds)
    }

    /// Asks Redis, and fills the cache from an acceptance (unless a change
    /// or a flush came in between).
    pub async fn ask(&self, creds: &Credentials, granularity_ms: i64) -> StoreResult<AuthOutcome> {
        let slide = Fetch::Slide(self.cache.settings().slide_ms());
        self.fetch(creds, granularity_ms, slide).await
    }

    async fn fetch(
        &self,
        creds: &Credentials,
        granularity_ms: i64,
        how: Fetch,
    ) -> StoreResult<AuthOutcome> {
        let ticket = self.cache.ticket(creds);
        let outcome = self.tracked.authenticate(creds, granularity_ms, how).await;
        if let Some(ticket) = ticket {
            match &outcome {
                Ok(AuthOutcome::Accepted(profile, visit)) => self.cache.fill(
                    ticket,
                    Entry::new(
                        creds.uuid,
                        creds.app_id,
                        creds.skey_hash,
                        visit.created,
                        visit.visited,
                        // A peek is no visit.
                        match how {
                            Fetch::Slide(_) => Some(creds.now.0),
                            Fetch::Peek => None,
                        },
                        profile.clone(),
                    ),
                ),
                _ => self.cache.abandon(ticket),
            }
        }
        outcome
    }

    /// Starts the work that keeps the cache true: the events (changes,
    /// losses), the heartbeat and the slide writer. Each stops once the
    /// store is dropped.
    pub fn spawn(store: &Arc<TieredStore>) {
        let Some(near) = &store.near else { return };
        let mut events = near.tracked.events();
        let cache = near.cache.clone();
        let wake = near.wake.clone();
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
                        // Dark already: nothing served to flush.
                        if cache.is_live() {
                            cache.go_dark(reason);
                        }
                        wake.notify_one();
                    }
                }
            }
        });
        let weak = Arc::downgrade(store);
        tokio::spawn(refill_dropped(weak.clone(), refills));
        tokio::spawn(heartbeat(weak.clone(), near.wake.clone()));
        let period = near.cache.settings().slide;
        crate::store::periodic::spawn_every(store, period, |s| async move {
            if let Some(near) = &s.near {
                near.write_slides(&s).await;
            }
        });
    }

    /// Writes the held-back slides to Redis. A visit due for PostgreSQL
    /// goes to the write-behind; a slide that fails is kept for the next
    /// round and its visit handed to the write-behind (PostgreSQL then has
    /// it even if Redis never does).
    pub async fn write_slides(&self, store: &TieredStore) {
        let pending = self.cache.take_slides();
        let apps = store.apps.load();
        for batch in pending.chunks(SLIDE_BATCH) {
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
                        visited: p.visited,
                        limits,
                        granularity_ms: store.every.visit.for_session_ms(limits.session_ms),
                    },
                ));
            }
            let slides: Vec<Slide<'_>> = todo.iter().map(|(_, s)| *s).collect();
            let results = self.tracked.slide(&slides).await;
            let (mut ok, mut gone, mut failed) = (0, 0, 0);
            for ((p, _), result) in todo.into_iter().zip(results) {
                match result {
                    Ok(Slid::Written(due)) => {
                        ok += 1;
                        self.cache.slid(p);
                        if due {
                            store
                                .visits
                                .record(p.entry.uuid, crate::clock::Timestamp(p.visited));
                        }
                    }
                    Ok(Slid::Gone) => {
                        gone += 1;
                        self.cache.gone(p);
                    }
                    Err(_) => {
                        failed += 1;
                        store
                            .visits
                            .record(p.entry.uuid, crate::clock::Timestamp(p.visited));
                        self.cache.retry(p.clone());
                    }
                }
            }
            self.cache.metrics().slides(ok, gone, failed);
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
            Some(async move {
                let _ = near.fetch(&creds, granularity, Fetch::Peek).await;
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
        if cache.is_live() {
            if !matches!(near.tracked.check().await, Ok(true)) {
                cache.go_dark(flush_reason::HEARTBEAT);
            }
        } else if near.tracked.enable().await.is_ok() {
            // Everything from before tracking was (re)enabled is dropped.
            cache.go_live();
        }
        cache.sizes();
    }
}
