//! The near cache: hot sessions in process, in front of Redis, so that an
//! auth of a session seen a moment ago costs no round trip.
//!
//! It holds copies of what Redis answered, and Redis tells it what changed
//! (see `tracking.rs`: every session key is tracked, and any write to
//! one by anyone but this instance drops the copy here). The rules that keep
//! it from ever accepting what Redis would refuse:
//!
//! 1. **Serve only while listening.** Entries are served only while the
//!    tracking connection is known to be up with tracking on (`live`).
//!    Losing it, a reconnect, tracking found off, a missed invalidation
//!    (the channel lagged) or a failed heartbeat empty the cache at once
//!    ([`NearCache::stop_serving`]); it fills again only once tracking is back.
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
//!    session it changed before it answers, and stops serving while a write of
//!    its to Redis has failed.
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
mod aside;
mod cache;
mod entry;
pub(crate) mod metrics;
mod settings;
mod slides;
mod tracking;
mod upkeep;
mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uuid::Uuid;

pub use cache::{NearCache, FillTicket};
pub use entry::Entry;
pub use metrics::{FlushReason, NearMetrics};
pub use settings::NearSettings;
pub use slides::{PendingSlide, SlideOutcome};
pub use tracking::{SlideReply, SlideWrite, Tracked, Tracking, TrackingEvent};

use crate::clock::{Clock, Timestamp};
use crate::domain::session::{Credentials, Profile};
use crate::store::StoreResult;
use crate::store::app_table::SharedAppTable;
use crate::store::redis::{AuthOutcome, Redis};
use crate::store::visit_granularity::VisitGranularity;
use crate::store::write_behind::WriteBehind;

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

/// What the near cache needs of the store around it, and no more.
pub struct Links {
    /// The pool: auths the cache does not take go there, the usual way.
    pub redis: Redis,
    /// PostgreSQL's write-behind of last visits: where a visit goes that
    /// Redis cannot take (away, or the session gone from it).
    pub visits: Arc<WriteBehind>,
    /// The apps, for the limits a held-back slide is written under.
    pub apps: Arc<SharedAppTable>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How often a session's visit is due for PostgreSQL.
    pub visit: VisitGranularity,
    /// Whether every write of this instance has reached Redis (none failed
    /// and waits for its repair): only then may copies be trusted.
    pub writes_settled: Box<dyn Fn() -> bool + Send + Sync>,
}

/// The near cache and its line to Redis.
pub struct Near {
    cache: Arc<NearCache>,
    links: Links,
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
        links: Links,
        settings: NearSettings,
        metrics: NearMetrics,
    ) -> Self {
        Near {
            cache: Arc::new(NearCache::new(settings, metrics)),
            links,
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
    #[cfg(any(test, feature = "testing"))]
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
    pub async fn ask(&self, creds: &Credentials, granularity_ms: i64) -> StoreResult<AuthOutcome> {
        let Some(ticket) = self.cache.ticket(creds) else {
            return self.links.redis.authenticate(creds, granularity_ms).await;
        };
        let (outcome, unqueued) = self.fetch(ticket, creds, granularity_ms, true).await;
        if outcome.is_err() {
            // Not answered on a tracked node (its slot moved, or is
            // moving): the pool answers, and the heartbeat looks at the
            // layout now.
            self.wake.notify_one();
            return self.links.redis.authenticate(creds, granularity_ms).await;
        }
        // Redis slid the session as it answered: the copy starts with its
        // visit written (a slide the queue had no room for is written now).
        if let Some(slide) = unqueued {
            self.write_all(vec![slide]).await;
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
        ticket: FillTicket<'_>,
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

    /// With Redis away: hands session `creds.uuid`'s pending visit to
    /// PostgreSQL's write-behind (what the auth then reads), leaving the
    /// slide queued, in its place, for Redis' return.
    pub fn hand_pending_visit_to_postgres(&self, creds: &Credentials) {
        if let Some(visited) = self.cache.pending_visit(creds.uuid) {
            self.links.visits.record(creds.uuid, Timestamp(visited));
        }
    }

    /// Writes session `creds.uuid`'s pending slide now, if it has one:
    /// Redis is about to be asked about it, and must not judge by a visit
    /// this instance held back.
    pub async fn write_pending_slide(&self, creds: &Credentials) {
        let give_up = tokio::time::Instant::now() + self.links.redis.timeout();
        loop {
            if let Some(slide) = self.cache.take_slide(creds.uuid) {
                self.write_all(vec![slide]).await;
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

    /// Stops serving: a write of this instance to Redis failed, so Redis
    /// may still hold what it replaced (until the repair evicts it), and
    /// this instance must not keep or make copies of it.
    pub fn write_failed(&self) {
        if self.cache.is_live() {
            self.cache.stop_serving(FlushReason::WriteFailed);
        }
    }

    /// Stops serving, writes what is held back, closes the connection.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.cache.stop_serving(FlushReason::Close);
        self.write_slides().await;
        self.tracked.quit().await;
    }
}
