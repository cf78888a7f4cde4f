//! The middle link of the session chain: Redis, the hot copy. It holds
//! only its next link (the record) and its own queue: the keys whose
//! Redis copy may be stale because a write to Redis failed, evicted once
//! Redis answers again. A miss reads through to the record, bounded
//! (`unknown.rs`).
//!
//! What Redis must be told of a change is also in the record (the outbox
//! of session changes, written with the change): a change its maker could
//! not tell Redis of (Redis away from it, the request cut off, the process
//! gone) is told by any instance a moment later
//! ([`HotLink::tell_redis_what_it_missed`]), so nothing acknowledged
//! depends on one process staying up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use uuid::Uuid;

use super::record::RecordLink;
use super::unknown::MissGuard;
use crate::clock::Timestamp;
use crate::domain::session::{Credentials, Limits, Profile};
use crate::store::metrics::{ReadThrough, StoreMetrics};
use crate::store::record::SessionRecord;
use crate::store::redis::{self, AuthOutcome, Redis};
use crate::store::{Backend, Cause, StoreError, StoreResult};

/// How old an untold removal must be before any instance tells Redis of
/// it: its maker marks it told as soon as Redis took it, so a removal still
/// untold after this was not (Redis away from its maker, the request cut
/// off, the process gone). Short: a revoke is enforced within a second.
const REMOVAL_GRACE: Duration = Duration::from_millis(200);
/// The same for logins and phone numbers, whose makers mark them with the
/// next flush (one statement for many, off the login's path).
const CHANGE_GRACE: Duration = Duration::from_secs(2);
/// Changes told per round.
const OUTBOX_BATCH: i64 = 500;

/// Called when a write to Redis failed (the near cache stops trusting its
/// copies until the repair is through).
type FailedWriteHook = Box<dyn Fn() + Send + Sync>;

/// Redis, the keys to repair in it, and the record behind it.
pub struct HotLink {
    /// The pool (also the source of the near cache's tracked connection).
    pub(super) redis: Redis,
    /// The next link.
    pub(super) record: Arc<RecordLink>,
    repairs: Arc<Mutex<HashSet<Uuid>>>,
    misses: MissGuard,
    metrics: StoreMetrics,
    on_failed_write: OnceLock<FailedWriteHook>,
}

impl HotLink {
    /// The link over `redis`, reading through to `record` at most
    /// `read_through_per_second` times a second (0: unbounded).
    pub fn new(
        redis: Redis,
        record: Arc<RecordLink>,
        metrics: StoreMetrics,
        read_through_per_second: u32,
    ) -> Self {
        HotLink {
            redis: redis.with_metrics(metrics.clone()),
            record,
            repairs: Arc::default(),
            misses: MissGuard::new(read_through_per_second),
            metrics,
            on_failed_write: OnceLock::new(),
        }
    }

    /// Runs `hook` on every failed write to Redis (set once, at assembly).
    pub fn on_failed_write(&self, hook: FailedWriteHook) {
        let _ = self.on_failed_write.set(hook);
    }

    /// Whether every write has reached Redis (none waits for its repair).
    pub fn writes_settled(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let repairs = self.repairs.clone();
        move || repairs.lock().is_ok_and(|r| r.is_empty())
    }

    /// Whether Redis answers.
    pub fn is_connected(&self) -> bool {
        self.redis.is_connected()
    }

    /// A login made `uuid`: it is no longer unknown.
    pub fn known(&self, uuid: Uuid) {
        self.misses.known(uuid);
    }

    /// Queues `uuid` for eviction: Redis may hold what a failed write
    /// replaced.
    pub fn queue_repair(&self, uuid: Uuid) {
        if let Ok(mut r) = self.repairs.lock() {
            r.insert(uuid);
        }
        if let Some(hook) = self.on_failed_write.get() {
            hook();
        }
    }

    /// Evicts the keys queued by failed Redis writes, once Redis answers.
    pub async fn repair(&self) {
        if !self.redis.is_connected() {
            return;
        }
        let queued: Vec<Uuid> = match self.repairs.lock() {
            Ok(mut r) => r.drain().collect(),
            Err(_) => return,
        };
        for (i, uuid) in queued.iter().enumerate() {
            if self.redis.evict(*uuid).await.is_err() {
                for u in &queued[i..] {
                    self.queue_repair(*u);
                }
                return;
            }
        }
    }

    /// Writes `record` to Redis with the TTL it has left under `limits`
    /// at `now` (its index entry: until its absolute limit).
    async fn put(
        &self,
        record: &SessionRecord,
        limits: &Limits,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let deadline = limits.deadline(record.create_time, record.last_visit);
        let absolute = record.create_time.plus_millis(limits.login_ms);
        self.redis
            .put(record, deadline.0 - now.0, absolute.0 - now.0)
            .await
    }

    /// Caches `record` in Redis; on failure queues its key for eviction.
    /// Whether Redis took it.
    pub async fn cache(&self, record: &SessionRecord, limits: &Limits, now: Timestamp) -> bool {
        let written = if self.redis.is_connected() {
            self.put(record, limits, now).await
        } else {
            Err(redis::not_connected())
        };
        if written.is_err() {
            self.queue_repair(record.uuid);
        }
        written.is_ok()
    }

    /// Replaces a removed session by a tombstone in Redis. Whether Redis
    /// took it.
    pub async fn tombstone(&self, uuid: Uuid) -> bool {
        self.record.forget(uuid);
        let buried = if self.redis.is_connected() {
            self.redis.tombstone(uuid).await
        } else {
            Err(redis::not_connected())
        };
        if buried.is_err() {
            self.queue_repair(uuid);
        }
        buried.is_ok()
    }

    /// Tells Redis the changes no instance told it of (oldest first, a
    /// batch per call): each changed session is made to agree with the
    /// record as it is now: a tombstone if the record is gone; its copy
    /// evicted if Redis holds an older generation (the next auth reads it
    /// through). A copy of the record's generation is left alone: only
    /// Redis holds its newest visit, which a read-through would not see.
    /// Idempotent, so two instances telling the same change do no harm.
    pub async fn tell_redis_what_it_missed(&self) {
        if !self.redis.is_connected() {
            return;
        }
        let Ok(untold) = self
            .record
            .pg
            .unsynced_changes(REMOVAL_GRACE, CHANGE_GRACE, OUTBOX_BATCH)
            .await
        else {
            return;
        };
        let mut told = Vec::with_capacity(untold.len());
        let mut agreed = HashSet::new();
        for change in untold {
            if !agreed.contains(&change.uuid) {
                let done = match self.record.pg.session(change.uuid).await {
                    Ok(Some(record)) => match self.redis.generation(change.uuid).await {
                        Ok(Some(held)) if held < record.generation => {
                            self.redis.evict(change.uuid).await.is_ok()
                        }
                        Ok(_) => true,
                        Err(_) => false,
                    },
                    Ok(None) => self.redis.tombstone(change.uuid).await.is_ok(),
                    Err(_) => false,
                };
                if !done {
                    break;
                }
                agreed.insert(change.uuid);
            }
            told.push(change.seq);
        }
        if !told.is_empty() {
            tracing::info!(
                changes = told.len(),
                "told Redis of session changes their instance could not"
            );
            self.record.mark_told(&told).await;
        }
    }

    /// Settles an auth by what Redis answered: a due visit is queued for
    /// the record, a miss reads through, a failure serves from the record.
    pub async fn settle(
        &self,
        creds: &Credentials,
        outcome: StoreResult<AuthOutcome>,
    ) -> StoreResult<Option<Arc<Profile>>> {
        match outcome {
            Ok(AuthOutcome::Accepted(profile, visit)) => {
                if visit.due {
                    self.record.visit(creds.uuid, creds.now);
                }
                Ok(Some(profile))
            }
            Ok(AuthOutcome::Refused) => Ok(None),
            Ok(AuthOutcome::Miss) => self.read_through(creds, ReadThrough::Miss).await,
            Err(e) => {
                tracing::debug!(error = %e, "redis auth failed; serving from postgres");
                self.read_through(creds, ReadThrough::RedisDown).await
            }
        }
    }

    /// Auth from the record: on a Redis miss (then Redis is filled again)
    /// or with Redis down.
    pub async fn read_through(
        &self,
        creds: &Credentials,
        why: ReadThrough,
    ) -> StoreResult<Option<Arc<Profile>>> {
        let repopulate = why == ReadThrough::Miss;
        if repopulate {
            // A miss with Redis up: bounded (see `unknown.rs`).
            let now = std::time::Instant::now();
            if self.misses.recently_unknown(creds.uuid, now) {
                return Ok(None);
            }
            if !self.misses.allow_read(now) {
                return Err(StoreError::unavailable(Backend::Postgres, Cause::PoolFull));
            }
        }
        self.metrics.read_through(why);
        let Some(mut record) = self.record.session(creds.uuid).await? else {
            if repopulate {
                self.misses.unknown(creds.uuid, std::time::Instant::now());
            }
            return Ok(None);
        };
        if !creds.accepts(
            record.app_id,
            &record.skey_hash,
            record.create_time,
            record.last_visit,
        ) {
            return Ok(None);
        }
        record.last_visit = record.last_visit.max(creds.now);
        self.record.visit(creds.uuid, record.last_visit);
        if repopulate {
            // A failed repopulation leaves nothing stale behind (it was a
            // miss): the next auth reads through again.
            let _ = self.put(&record, &creds.limits, creds.now).await;
        }
        Ok(Some(Arc::new(Profile {
            open_id: record.open_id.into(),
            union_id: record.union_id.map(Box::from),
            user_info: record.user_info.map(Arc::from),
            phone_number: record.phone_number.map(Box::from),
        })))
    }
}
