//! The slides the near cache holds back: one per session, each due between
//! one and one and a half slide intervals after it was queued.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Entry;

/// Pending slides: the copy whose visit to write, per session, and when
/// each is due (soonest first). A slide taken early (before Redis was
/// asked) leaves its place in `order` behind; such places are skipped when
/// they come up, and `order` is rebuilt when they outnumber the live ones,
/// so it never grows past twice the pending slides.
#[derive(Default)]
pub struct SlideQueue(Mutex<Queue>);

#[derive(Default)]
struct Queue {
    pending: HashMap<Uuid, (Arc<Entry>, Instant)>,
    order: BinaryHeap<Reverse<(Instant, Uuid)>>,
}

impl Queue {
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

impl SlideQueue {
    /// Queues `e`'s slide (one per session, at most `max` sessions);
    /// `false` when the queue is full.
    pub fn queue(&self, e: &Arc<Entry>, max: u64) -> bool {
        // A load first: most hits find it queued, and a swap on every hit
        // would bounce the entry's cache line between cores.
        if e.queued.load(Ordering::Acquire) || e.queued.swap(true, Ordering::AcqRel) {
            return true;
        }
        let Ok(mut q) = self.0.lock() else {
            e.queued.store(false, Ordering::Release);
            return false;
        };
        if let Some((queued, _)) = q.pending.get_mut(&e.uuid) {
            // A later copy's visit is the later one; the session keeps its
            // place.
            *queued = e.clone();
            return true;
        }
        if q.pending.len() as u64 >= max {
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

    /// Whether the queue has room for another session, of at most `max`.
    pub fn has_room(&self, max: u64) -> bool {
        self.0.lock().is_ok_and(|q| (q.pending.len() as u64) < max)
    }

    /// Takes every pending slide (the visits they write are read now, and
    /// a hit after this queues the session again).
    pub fn take_all(&self) -> Vec<PendingSlide> {
        let queued = match self.0.lock() {
            Ok(mut q) => {
                q.order.clear();
                std::mem::take(&mut q.pending)
            }
            Err(_) => return Vec::new(),
        };
        queued.into_values().map(|(e, _)| pending(e)).collect()
    }

    /// Takes the slides due at `now`.
    pub fn take_due(&self, now: Instant) -> Vec<PendingSlide> {
        let mut due = Vec::new();
        if let Ok(mut q) = self.0.lock() {
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
        due.into_iter().map(pending).collect()
    }

    /// Takes the pending slide of session `uuid`, if any.
    pub fn take(&self, uuid: Uuid) -> Option<PendingSlide> {
        let mut q = self.0.lock().ok()?;
        let (entry, _) = q.pending.remove(&uuid)?;
        q.compact();
        drop(q);
        Some(pending(entry))
    }

    /// The visit session `uuid`'s pending slide would write, leaving it
    /// queued.
    pub fn pending_visit(&self, uuid: Uuid) -> Option<i64> {
        let q = self.0.lock().ok()?;
        q.pending.get(&uuid).map(|(e, _)| e.visited())
    }

    /// Pending slides, and the places in their queue (at most twice as
    /// many, plus a constant).
    pub fn backlog(&self) -> (usize, usize) {
        self.0
            .lock()
            .map(|q| (q.pending.len(), q.order.len()))
            .unwrap_or_default()
    }
}

/// A slide taken off the queue: its visit is read now.
fn pending(entry: Arc<Entry>) -> PendingSlide {
    entry.queued.store(false, Ordering::Release);
    let visited = entry.visited();
    PendingSlide { entry, visited }
}

/// How writing a slide ended, as the near cache needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlideOutcome {
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
