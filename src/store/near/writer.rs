//! The writer of held-back slides: pipelined batches to Redis, a visit
//! Redis cannot take handed to PostgreSQL, nothing lost to a cancellation.

use super::{Near, PendingSlide, SlideReply, SlideWrite, SlideOutcome};
use crate::clock::Timestamp;
use crate::domain::app::AppRef;

/// Most slides sent at once.
const SLIDE_BATCH: usize = 256;

impl Near {
    /// Writes the held-back slides to Redis. A visit due for PostgreSQL
    /// goes to the write-behind; a slide that fails is kept for the next
    /// round and its visit handed to the write-behind (PostgreSQL then has
    /// it even if Redis never does).
    pub async fn write_slides(&self) {
        self.write_all(self.cache.take_slides()).await;
    }

    /// [`Near::write_slides`] for the slides pending an interval or more.
    pub(super) async fn write_due_slides(&self) {
        // With Redis away nothing is sent: the client would hold each write
        // until it reconnects, round after round. The slides stay queued
        // (an auth meanwhile hands its visit to PostgreSQL) and go out once
        // Redis is back.
        if !self.links.redis.is_connected() {
            return;
        }
        let due = self.cache.take_due_slides(std::time::Instant::now());
        self.write_all(due).await;
    }

    /// Writes `pending`, a batch at a time. All of them are marked as
    /// being written from the start (a request about to ask Redis waits
    /// for its session's slide, whichever batch holds it), and whatever a
    /// cancellation leaves unwritten is queued again.
    pub(super) async fn write_all(&self, pending: Vec<PendingSlide>) {
        if pending.is_empty() {
            return;
        }
        let mut in_flight = InFlight::new(self, &pending);
        for batch in pending.chunks(SLIDE_BATCH) {
            self.write(batch).await;
            in_flight.settled(batch.len());
            // Lets the requests queued on this worker run between batches.
            tokio::task::yield_now().await;
        }
    }

    async fn write(&self, batch: &[PendingSlide]) {
        let apps = self.links.apps.load();
        let now = self.links.clock.now().0;
        let mut todo: Vec<(&PendingSlide, SlideWrite<'_>)> = Vec::with_capacity(batch.len());
        for p in batch {
            // An app deleted since: its sessions are gone.
            let Some(app) = apps.get(&AppRef::Id(p.entry.app)) else {
                continue;
            };
            let limits = app.limits();
            todo.push((
                p,
                SlideWrite {
                    uuid: p.entry.uuid,
                    app: p.entry.app,
                    skey_hash: &p.entry.skey_hash,
                    generation: p.entry.generation,
                    visited: p.visited,
                    limits,
                    granularity_ms: self.links.visit.for_session_ms(limits.session_ms),
                    now,
                },
            ));
        }
        let slides: Vec<SlideWrite<'_>> = todo.iter().map(|(_, s)| *s).collect();
        let results = self.tracked.slide(&slides).await;
        let (mut ok, mut gone, mut failed) = (0, 0, 0);
        for (&(p, _), result) in todo.iter().zip(results) {
            let visit = Timestamp(p.visited);
            let end = match result {
                Ok(SlideReply::Written(due)) => {
                    ok += 1;
                    if due {
                        self.links.visits.record(p.entry.uuid, visit);
                    }
                    SlideOutcome::Written
                }
                Ok(SlideReply::Unchanged) => {
                    ok += 1;
                    SlideOutcome::Unchanged
                }
                Ok(SlideReply::Gone) => {
                    // Expired in Redis before the slide came, or Redis came
                    // back empty: the visit was accepted, so PostgreSQL
                    // keeps it (it only ever raises a last visit; a removed
                    // session has no row to raise).
                    gone += 1;
                    self.links.visits.record(p.entry.uuid, visit);
                    SlideOutcome::Gone
                }
                Err(_) => {
                    failed += 1;
                    self.links.visits.record(p.entry.uuid, visit);
                    self.cache.retry(p);
                    SlideOutcome::Failed
                }
            };
            self.cache.slid(p, end);
        }
        self.cache.metrics().slides(ok, gone, failed);
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
    slides: &'a [PendingSlide],
    settled: usize,
}

impl<'a> InFlight<'a> {
    fn new(near: &'a Near, slides: &'a [PendingSlide]) -> Self {
        if let Ok(mut w) = near.writing.lock() {
            w.extend(slides.iter().map(|s| s.entry.uuid));
        }
        InFlight {
            near,
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
                self.near
                    .links
                    .visits
                    .record(s.entry.uuid, Timestamp(s.visited));
            }
        }
        self.unmark(rest);
    }
}
