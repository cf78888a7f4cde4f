//! last_visit reaches PostgreSQL write-behind: each valid auth records its
//! time here (coalesced per session, newest wins), and a flusher writes the
//! batch every second and on shutdown. A crash loses at most that second of
//! sliding, never a session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::store::StoreResult;
use crate::store::postgres::Postgres;

/// Rows per UPDATE statement.
const CHUNK: usize = 5_000;

/// Pending last visits, by session.
#[derive(Debug)]
pub struct WriteBehind {
    pending: Mutex<HashMap<Uuid, Timestamp>>,
    // One flush at a time, so that a flush on shutdown waits for the
    // periodic one in flight instead of returning before it has written.
    flushing: tokio::sync::Mutex<()>,
    // Beyond this many distinct sessions (PostgreSQL down for long), new
    // visits are dropped: Redis still slides them; only their record lags.
    cap: usize,
    // Visits dropped so, since they were last counted.
    dropped: AtomicU64,
}

impl WriteBehind {
    /// An empty buffer holding at most `cap` sessions.
    pub fn new(cap: usize) -> Self {
        WriteBehind {
            pending: Mutex::new(HashMap::new()),
            flushing: tokio::sync::Mutex::new(()),
            cap,
            dropped: AtomicU64::new(0),
        }
    }

    /// Notes that `uuid` was visited at `at`.
    pub fn record(&self, uuid: Uuid, at: Timestamp) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        let len = p.len();
        match p.get_mut(&uuid) {
            Some(t) => *t = (*t).max(at),
            None if len < self.cap => {
                p.insert(uuid, at);
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Visits dropped because the buffer was full, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// The newest visit of `uuid` not yet written, if any.
    pub fn pending_visit(&self, uuid: Uuid) -> Option<Timestamp> {
        self.pending.lock().ok()?.get(&uuid).copied()
    }

    /// Forgets `uuid` (its session is gone).
    pub fn forget(&self, uuid: Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&uuid);
        }
    }

    /// Number of sessions with a pending visit.
    pub fn len(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }

    fn take(&self) -> HashMap<Uuid, Timestamp> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    fn restore(&self, batch: impl IntoIterator<Item = (Uuid, Timestamp)>) {
        for (uuid, at) in batch {
            self.record(uuid, at);
        }
    }

    /// Writes every pending visit to PostgreSQL. What fails to write is kept
    /// for the next flush. Returns the number of sessions written.
    pub async fn flush(&self, pg: &Postgres) -> StoreResult<usize> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch: Vec<(Uuid, Timestamp)> = self.take().into_iter().collect();
        let mut written = 0;
        for (i, chunk) in batch.chunks(CHUNK).enumerate() {
            let uuids: Vec<Uuid> = chunk.iter().map(|(u, _)| *u).collect();
            let times: Vec<Timestamp> = chunk.iter().map(|(_, t)| *t).collect();
            if let Err(e) = pg.record_visits(&uuids, &times).await {
                self.restore(batch[i * CHUNK..].iter().copied());
                return Err(e);
            }
            written += chunk.len();
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_coalesce_to_the_newest() {
        let wb = WriteBehind::new(10);
        let u = Uuid::new_v4();
        wb.record(u, Timestamp(5));
        wb.record(u, Timestamp(9));
        wb.record(u, Timestamp(7));
        assert_eq!(wb.len(), 1);
        assert_eq!(wb.pending_visit(u), Some(Timestamp(9)));
        wb.forget(u);
        assert_eq!(wb.len(), 0);
    }

    #[test]
    fn the_buffer_is_bounded_but_known_sessions_still_update() {
        let wb = WriteBehind::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        wb.record(a, Timestamp(1));
        wb.record(b, Timestamp(1));
        wb.record(c, Timestamp(1));
        assert_eq!(wb.len(), 2);
        assert_eq!(wb.pending_visit(c), None);
        wb.record(a, Timestamp(3));
        assert_eq!(wb.pending_visit(a), Some(Timestamp(3)));
        assert_eq!(wb.take_dropped(), 1, "c's visit was dropped, and counted");
        assert_eq!(wb.take_dropped(), 0, "counted once");
    }

    #[test]
    fn take_then_restore_keeps_newer_visits() {
        let wb = WriteBehind::new(10);
        let u = Uuid::new_v4();
        wb.record(u, Timestamp(5));
        let batch = wb.take();
        wb.record(u, Timestamp(8));
        wb.restore(batch);
        assert_eq!(wb.pending_visit(u), Some(Timestamp(8)));
    }
}
