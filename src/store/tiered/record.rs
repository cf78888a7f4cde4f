//! The last link of the session chain: PostgreSQL, the acknowledged record.
//! It owns its write queues (last visits on their way, [`WriteBehind`]; the
//! marks of changes Redis was told of) and the purges of expired records and
//! of old changes; the links above hand it visits and read what they lost
//! from it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::store::StoreResult;
use crate::store::metrics::StoreMetrics;
use crate::store::postgres::{ChangeSeq, Postgres};
use crate::store::record::SessionRecord;
use crate::store::visit_granularity::PURGE_MARGIN;
use crate::store::write_behind::WriteBehind;

use crate::config::defaults::PURGE_BATCH;

/// PostgreSQL and the visits waiting for it.
pub struct RecordLink {
    /// The database (sessions, apps, audit).
    pub(super) pg: Postgres,
    visits: Arc<WriteBehind>,
    metrics: StoreMetrics,
    // Changes Redis was told of, to mark in the outbox with the next flush.
    told: Mutex<Vec<ChangeSeq>>,
}

/// How long a change Redis was told of stays in the outbox (the feed of
/// session events reads it).
const CHANGES_KEPT: Duration = Duration::from_secs(24 * 3600);

impl RecordLink {
    /// The link over `pg`, holding at most `cap` sessions' visits.
    pub fn new(pg: Postgres, metrics: StoreMetrics, cap: usize) -> Self {
        RecordLink {
            pg: pg.with_metrics(metrics.clone()),
            visits: Arc::new(WriteBehind::new(cap)),
            metrics,
            told: Mutex::default(),
        }
    }

    /// The queue of visits, for the near cache: where a visit goes that
    /// Redis cannot take (away, or the session gone from it).
    pub fn visit_queue(&self) -> Arc<WriteBehind> {
        self.visits.clone()
    }

    /// Queues `uuid`'s visit at `at` for the record.
    pub fn visit(&self, uuid: Uuid, at: Timestamp) {
        self.visits.record(uuid, at);
    }

    /// The newest visit of `uuid` still waiting for PostgreSQL.
    pub fn pending_visit(&self, uuid: Uuid) -> Option<Timestamp> {
        self.visits.pending_visit(uuid)
    }

    /// Sessions whose last visit is waiting to be written.
    #[cfg(any(test, feature = "testing"))]
    pub fn pending_visits(&self) -> usize {
        self.visits.len()
    }

    /// The record of session `uuid`, with the newest visit still queued.
    pub async fn session(&self, uuid: Uuid) -> StoreResult<Option<SessionRecord>> {
        let Some(mut record) = self.pg.session(uuid).await? else {
            return Ok(None);
        };
        // The record lags by up to one flush: the newest visit may still be
        // in the queue.
        if let Some(pending) = self.pending_visit(uuid) {
            record.last_visit = record.last_visit.max(pending);
        }
        Ok(Some(record))
    }

    /// Forgets the queued visit of a removed session.
    pub fn forget(&self, uuid: Uuid) {
        self.visits.forget(uuid);
    }

    /// Writes queued last visits to PostgreSQL now, and records the flush
    /// (sessions written, time, failures) and what is still pending.
    pub async fn flush_visits(&self) {
        let started = Instant::now();
        let written = self.visits.flush(&self.pg).await;
        self.metrics.visits_flushed(
            &written,
            started.elapsed(),
            self.visits.len(),
            self.visits.take_dropped(),
        );
    }

    /// Notes that Redis was told of `change` (marked with the next flush:
    /// a change left unmarked is only told again, harmlessly).
    pub fn told(&self, change: Option<ChangeSeq>) {
        if let (Some(seq), Ok(mut told)) = (change, self.told.lock()) {
            told.push(seq);
        }
    }

    /// Marks the changes Redis was told of (`seqs`, and those noted).
    pub async fn mark_told(&self, seqs: &[ChangeSeq]) {
        let mut all = self
            .told
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        all.extend_from_slice(seqs);
        if let Err(e) = self.pg.mark_synced(&all).await {
            tracing::debug!(error = %e, "marking changes told to Redis failed; they are told again");
        }
    }

    /// Purges sessions expired at `now` from PostgreSQL, batch by batch.
    pub async fn purge(&self, now: Timestamp) {
        // PostgreSQL's last_visit_time lags Redis: judge expiry later by a
        // margin no instance's setting can exceed, or a session still
        // sliding in Redis could lose its record.
        let lag = i64::try_from(PURGE_MARGIN.as_millis()).unwrap_or(i64::MAX);
        let now = now.plus_millis(-lag);
        let mut total = 0;
        loop {
            match self.pg.purge_expired(now, PURGE_BATCH).await {
                Ok(n) => {
                    total += n;
                    if n < PURGE_BATCH as u64 {
                        break;
                    }
                    // Let foreground queries through between batches.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge of expired sessions failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::debug!(purged = total, "purged expired sessions from postgres");
        }
        while let Ok(n) = self.pg.purge_synced_changes(CHANGES_KEPT, PURGE_BATCH).await {
            if n < PURGE_BATCH as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
