//! The production store: sessions served from Redis, recorded in PostgreSQL,
//! apps configured in PostgreSQL and cached in-process.
//!
//! - A login is answered after PostgreSQL committed it, then cached in Redis.
//! - An auth is one Redis script; a miss reads through to PostgreSQL and
//!   repopulates Redis; Redis down means auth is served from PostgreSQL.
//! - Slid last visits reach PostgreSQL write-behind ([`WriteBehind`]).
//! - Removals leave a tombstone in Redis so no late writer resurrects them.
//! - A Redis write that fails after PostgreSQL committed queues the key for
//!   eviction, so Redis never keeps serving a stale copy once it is back.

mod apps;
mod audit;
mod health;
mod tokens;
mod unknown;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::clock::{Clock, Timestamp};
use crate::domain::app::{AppId, AppRef};
use crate::domain::session::{
    Credentials, Limits, NewSession, Profile, SessionPage, SessionQuery, SessionSummary,
    StoredLogin,
};
use crate::store::app_table::{AppTable, SharedAppTable};
use crate::store::metrics::StoreMetrics;
use crate::store::near::{Links, Lookup, Near, NearCache, NearSettings, Tracked};
use crate::store::periodic::spawn_every;
use crate::store::postgres::Postgres;
use crate::store::record::SessionRecord;
use crate::store::redis::{self, AuthOutcome, Redis};
use crate::store::{Backend, Cause, SessionStore, StoreError, StoreResult};

pub use crate::store::visit_granularity::VisitGranularity;
use crate::store::write_behind::WriteBehind;
use unknown::MissGuard;
pub use unknown::UNKNOWN_TTL;

/// Timing of the background work.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// Write-behind flush period.
    pub flush: Duration,
    /// App cache refresh period (how fast other instances' changes arrive).
    pub apps: Duration,
    /// Period of the PostgreSQL purge of expired sessions.
    pub purge: Duration,
    /// Period of the retry of Redis evictions that failed.
    pub repair: Duration,
    /// A session's last visit is written to PostgreSQL at most once per
    /// this (it slides in Redis on every auth). PostgreSQL's copy lags by at
    /// most this plus one flush.
    pub visit: VisitGranularity,
    /// PostgreSQL reads per second a Redis miss may cause (0: unbounded);
    /// past it a miss answers 503 (see `unknown.rs`).
    pub read_through_per_second: u32,
    /// The near cache in front of Redis (`None`: every auth asks Redis).
    pub near: Option<NearSettings>,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            flush: Duration::from_secs(1),
            apps: Duration::from_millis(500),
            purge: Duration::from_secs(60),
            repair: Duration::from_secs(1),
            visit: VisitGranularity::DEFAULT,
            read_through_per_second: DEFAULT_READ_THROUGH_PER_SECOND,
            near: Some(NearSettings::DEFAULT),
        }
    }
}

/// Default budget of read-throughs per second per instance: far above
/// what repopulating Redis after a flush needs per instance (each session
/// is read once, then served from Redis), far below what a flood would ask.
pub const DEFAULT_READ_THROUGH_PER_SECOND: u32 = 2_000;

/// Rows deleted per purge statement: small, so the purge never holds many
/// row locks or a long transaction.
const PURGE_BATCH: i64 = 500;
/// Most sessions the write-behind buffer tracks.
const WRITE_BEHIND_CAP: usize = 2_000_000;

/// Redis + PostgreSQL behind the [`Store`] trait.
pub struct TieredStore {
    redis: Redis,
    pg: Postgres,
    apps: Arc<SharedAppTable>,
    visits: Arc<WriteBehind>,
    metrics: StoreMetrics,
    every: Intervals,
    // Keys whose Redis copy may be stale because a write to Redis failed.
    repairs: Arc<Mutex<HashSet<Uuid>>>,
    misses: MissGuard,
    near: Option<Arc<Near>>,
}

impl TieredStore {
    /// A store over these backends. Loads the apps (PostgreSQL must answer)
    /// and starts the background work, which stops when the store is dropped.
    pub async fn start(
        redis: Redis,
        pg: Postgres,
        clock: Arc<dyn Clock>,
        every: Intervals,
        metrics: StoreMetrics,
    ) -> StoreResult<Arc<Self>> {
        let apps = pg.list_apps().await?;
        let redis = redis.with_metrics(metrics.clone());
        let apps_cache = Arc::new(SharedAppTable::default());
        apps_cache.store(AppTable::new(apps));
        let visits = Arc::new(WriteBehind::new(WRITE_BEHIND_CAP));
        let repairs: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
        let near = match every.near {
            Some(settings) => {
                let tracked = Tracked::connect(&redis).map_err(|_| redis::not_connected())?;
                let pending = repairs.clone();
                let links = Links {
                    redis: redis.clone(),
                    visits: visits.clone(),
                    apps: apps_cache.clone(),
                    clock: clock.clone(),
                    visit: every.visit,
                    writes_settled: Box::new(move || pending.lock().is_ok_and(|r| r.is_empty())),
                };
                let near = Arc::new(Near::new(tracked, links, settings, metrics.near()));
                Near::spawn(&near);
                Some(near)
            }
            None => None,
        };
        let store = Arc::new(TieredStore {
            redis,
            near,
            pg: pg.with_metrics(metrics.clone()),
            metrics,
            every,
            apps: apps_cache,
            visits,
            repairs,
            misses: MissGuard::new(every.read_through_per_second),
        });
        spawn_every(
            &store,
            every.flush,
            |s| async move { s.flush_visits().await },
        );
        spawn_every(
            &store,
            every.apps,
            |s| async move { s.refresh_apps().await },
        );
        spawn_every(&store, every.repair, |s| async move { s.repair().await });
        spawn_every(&store, every.purge, move |s| {
            let now = clock.now();
            async move { s.purge(now).await }
        });
        Ok(store)
    }

    /// The near cache, when it is on.
    pub fn near_cache(&self) -> Option<&NearCache> {
        self.near.as_ref().map(|n| n.cache())
    }

    /// The newest visit of session `uuid` this instance knows of: `stored`,
    /// or one still waiting for PostgreSQL or held back by the near cache.
    fn newest_visit(&self, uuid: Uuid, stored: Timestamp) -> Timestamp {
        let pending = self.visits.pending_visit(uuid).unwrap_or(stored);
        let held = self
            .near_cache()
            .and_then(|n| n.visit_of(uuid))
            .map_or(stored, Timestamp);
        stored.max(pending).max(held)
    }

    /// Waits up to `limit` until the near cache serves (tracking is on);
    /// `true` at once without a near cache.
    pub async fn wait_near_live(&self, limit: Duration) -> bool {
        let Some(near) = self.near_cache() else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + limit;
        while !near.is_live() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Sessions whose held-back slide is being written to Redis now.
    pub fn slides_being_written(&self) -> usize {
        self.near.as_ref().map_or(0, |n| n.being_written())
    }

    /// Writes the near cache's held-back slides to Redis now.
    pub async fn write_slides(&self) {
        if let Some(near) = &self.near {
            near.write_slides().await;
        }
    }

    /// Sessions whose last visit is waiting to be written.
    pub fn pending_visits(&self) -> usize {
        self.visits.len()
    }

    /// Writes pending last visits to PostgreSQL now, and records the flush
    /// (sessions written, time, failures) and what is still pending.
    pub async fn flush_visits(&self) {
        let started = std::time::Instant::now();
        let result = self.visits.flush(&self.pg).await;
        let pending = self.visits.len();
        match &result {
            // An empty flush is no flush: it would only pull the histograms
            // towards zero. The pending gauge is set every time, so it falls
            // back to 0 once PostgreSQL has caught up.
            Ok(0) => self.metrics.pending(pending),
            Ok(n) => self.metrics.flush(*n, started.elapsed(), true, pending),
            Err(_) => self.metrics.flush(0, started.elapsed(), false, pending),
        }
        match result {
            Ok(0) => {}
            Ok(n) => tracing::trace!(sessions = n, "flushed last visits"),
            Err(e) => {
                tracing::warn!(error = %e, pending, "last-visit flush failed; will retry")
            }
        }
    }

    /// Reloads the app cache from PostgreSQL.
    pub async fn refresh_apps(&self) {
        match self.pg.list_apps().await {
            Ok(apps) => self.apps.store(AppTable::new(apps)),
            Err(e) => tracing::debug!(error = %e, "app refresh failed; keeping the cached apps"),
        }
    }

    /// Purges sessions expired at `now` from PostgreSQL, batch by batch.
    pub async fn purge(&self, now: Timestamp) {
        // PostgreSQL's last_visit_time may lag Redis by the visit
        // granularity: judge expiry that much later, or a session still
        // sliding in Redis could lose its record.
        let lag = i64::try_from(self.every.visit.longest().as_millis()).unwrap_or(i64::MAX);
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
    }

    fn queue_repair(&self, uuid: Uuid) {
        if let Ok(mut r) = self.repairs.lock() {
            r.insert(uuid);
        }
        // Redis may hold what this write replaced: no copies of it here.
        if let Some(near) = &self.near {
            near.write_failed();
        }
    }

    /// Drops this instance's copy of session `uuid` once its change is in
    /// Redis: the reply to the change must not race Redis' push.
    fn forget_near(&self, uuid: Uuid) {
        if let Some(near) = self.near_cache() {
            near.forget(uuid);
        }
    }

    /// Evicts the keys queued by failed Redis writes, once Redis answers.
    async fn repair(&self) {
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
    async fn cache(&self, record: &SessionRecord, limits: &Limits, now: Timestamp) {
        let written = if self.redis.is_connected() {
            self.put(record, limits, now).await
        } else {
            Err(redis::not_connected())
        };
        if written.is_err() {
            self.queue_repair(record.uuid);
        }
        self.forget_near(record.uuid);
    }

    /// Replaces a removed session by a tombstone in Redis.
    async fn tombstone(&self, uuid: Uuid) {
        self.visits.forget(uuid);
        let buried = if self.redis.is_connected() {
            self.redis.tombstone(uuid).await
        } else {
            Err(redis::not_connected())
        };
        if buried.is_err() {
            self.queue_repair(uuid);
        }
        self.forget_near(uuid);
    }

    /// Auth from the record: on a Redis miss (then `repopulate`) or with
    /// Redis down.
    async fn read_through(
        &self,
        creds: &Credentials,
        repopulate: bool,
    ) -> StoreResult<Option<Arc<Profile>>> {
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
        self.metrics.read_through(repopulate);
        let Some(mut record) = self.pg.session(creds.uuid).await? else {
            if repopulate {
                self.misses.unknown(creds.uuid, std::time::Instant::now());
            }
            return Ok(None);
        };
        // The record lags by up to one flush: the newest visit may still be
        // in the write-behind buffer.
        if let Some(pending) = self.visits.pending_visit(creds.uuid) {
            record.last_visit = record.last_visit.max(pending);
        }
        if !creds.accepts(
            record.app_id,
            &record.skey_hash,
            record.create_time,
            record.last_visit,
        ) {
            return Ok(None);
        }
        record.last_visit = record.last_visit.max(creds.now);
        self.visits.record(creds.uuid, record.last_visit);
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

impl SessionStore for TieredStore {
    async fn upsert_session(&self, new: NewSession) -> StoreResult<StoredLogin> {
        let record = self.pg.upsert_session(&new).await?;
        self.misses.known(record.uuid);
        if let Some(app) = self.apps.load().get(&AppRef::Id(new.app_id)) {
            self.cache(&record, &app.limits(), new.now).await;
        } else {
            self.queue_repair(record.uuid);
            self.forget_near(record.uuid);
        }
        Ok(StoredLogin {
            // The first login of a (app, open_id) row: generation 1.
            new: record.generation == 1,
            uuid: record.uuid,
            user_info: record.user_info.map(Arc::from),
        })
    }

    async fn authenticate(&self, creds: &Credentials) -> StoreResult<Option<Arc<Profile>>> {
        // A near cache standing aside: auths go to Redis as without it.
        let near = self
            .near
            .as_ref()
            .filter(|n| !(self.redis.is_connected() && n.cache().passes(creds.uuid)));
        if let Some(near) = near {
            match near.lookup(creds) {
                Lookup::Accept(profile) => return Ok(Some(profile)),
                Lookup::Refuse => return Ok(None),
                // Redis judges (or, while it is away, PostgreSQL) with
                // this instance's held-back visit; without waiting for a
                // Redis that is not there.
                Lookup::Ask if self.redis.is_connected() => near.write_pending_slide(creds).await,
                Lookup::Ask => near.hand_pending_visit_to_postgres(creds),
            }
        }
        if !self.redis.is_connected() {
            return self.read_through(creds, false).await;
        }
        let granularity = self.every.visit.for_session_ms(creds.limits.session_ms);
        let outcome = match near {
            // Asked on the tracked connection, so the answer can be kept.
            Some(near) if near.cache().is_live() => near.ask(creds, granularity).await,
            _ => self.redis.authenticate(creds, granularity).await,
        };
        match outcome {
            Ok(AuthOutcome::Accepted(profile, visit)) => {
                if visit.due {
                    self.visits.record(creds.uuid, creds.now);
                }
                Ok(Some(profile))
            }
            Ok(AuthOutcome::Refused) => Ok(None),
            Ok(AuthOutcome::Miss) => self.read_through(creds, true).await,
            Err(e) => {
                tracing::debug!(error = %e, "redis auth failed; serving from postgres");
                self.read_through(creds, false).await
            }
        }
    }

    async fn session_key(&self, creds: &Credentials) -> StoreResult<Option<String>> {
        // The check (and slide) as for an auth; the key is only in the
        // record, and only for the skey that was checked.
        if self.authenticate(creds).await?.is_none() {
            return Ok(None);
        }
        self.pg.session_key(creds.uuid, &creds.skey_hash).await
    }

    async fn set_phone(&self, creds: &Credentials, phone_number: &str) -> StoreResult<bool> {
        let Some(record) = self
            .pg
            .set_phone(creds.uuid, &creds.skey_hash, phone_number)
            .await?
        else {
            return Ok(false);
        };
        // The new generation replaces the cached copy; Redis then answers
        // the number on the next auth.
        self.cache(&record, &creds.limits, creds.now).await;
        Ok(true)
    }

    async fn user_session_key(&self, app: AppId, open_id: &str) -> StoreResult<Option<String>> {
        self.pg.user_session_key(app, open_id).await
    }

    async fn logout(&self, creds: &Credentials) -> StoreResult<bool> {
        if self.authenticate(creds).await?.is_none() {
            return Ok(false);
        }
        // Only this skey's session: a concurrent re-login must survive.
        let deleted = self
            .pg
            .delete_session(creds.uuid, Some(&creds.skey_hash))
            .await?;
        if deleted {
            self.tombstone(creds.uuid).await;
        }
        Ok(deleted)
    }

    async fn revoke(&self, uuid: Uuid) -> StoreResult<bool> {
        let deleted = self.pg.delete_session(uuid, None).await?;
        self.tombstone(uuid).await;
        Ok(deleted)
    }

    async fn list_sessions(&self, app: AppId, query: &SessionQuery) -> StoreResult<SessionPage> {
        let mut page = self.pg.list_sessions(app, query).await?;
        for s in &mut page.sessions {
            s.last_visit_time = self.newest_visit(s.uuid, s.last_visit_time);
        }
        Ok(page)
    }

    async fn user_session(&self, app: AppId, open_id: &str) -> StoreResult<Option<SessionSummary>> {
        // Redis first, through the open_id index: no PostgreSQL read, and
        // the freshest last visit. Anything else goes to the record.
        if self.redis.is_connected() {
            if let Ok(Some((uuid, s))) = self.redis.user_session(app, open_id).await {
                return Ok(Some(SessionSummary {
                    uuid,
                    open_id: s.open_id,
                    union_id: s.union_id,
                    create_time: Timestamp(s.created),
                    last_visit_time: self.newest_visit(uuid, Timestamp(s.visited)),
                    phone_number: s.phone,
                }));
            }
        }
        let query = SessionQuery::user(open_id);
        Ok(self
            .list_sessions(app, &query)
            .await?
            .sessions
            .into_iter()
            .next())
    }
}
