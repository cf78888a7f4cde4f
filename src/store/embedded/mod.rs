//! The embedded store: apps and sessions in process memory. Concurrent
//! (sharded maps, lock-free app lookups), bounded (a session cap) and
//! self-cleaning (a reaper purges expired sessions). Nothing survives a restart.

mod apps;
mod audit;
mod health;
mod sessions;
mod tokens;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

use crate::clock::{Clock, Timestamp};
use crate::domain::app::{AppId, AppRef};
use crate::domain::audit::AuditEntry;
use crate::domain::session::Profile;
use crate::domain::skey::SkeyHash;
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::app_table::SharedAppTable;
use crate::store::metrics::{Op, StoreMetrics};
use crate::store::periodic::spawn_every;
use crate::store::{Backend, StoreResult};

/// One stored session.
struct Session {
    app_id: AppId,
    skey_hash: SkeyHash,
    create_time: Timestamp,
    // Atomic so that a valid auth slides it under the map's shared lock.
    last_visit: AtomicI64,
    // Read back only to decrypt data for a valid session (never shown).
    session_key: Box<str>,
    profile: Arc<Profile>,
}

impl Session {
    fn last_visit(&self) -> Timestamp {
        Timestamp(self.last_visit.load(Ordering::Relaxed))
    }

    fn index_key(&self) -> (AppId, Box<str>) {
        (self.app_id, self.profile.open_id.clone())
    }
}

/// In-process store of apps and sessions.
///
/// Lock order: when both maps are locked, the `(app, open_id)` index is locked
/// first and the session map second; nothing locks them the other way round.
pub struct EmbeddedStore {
    apps: SharedAppTable,
    // Serialises app writes and hands out ids; never held across an await.
    app_writer: Mutex<AppId>,
    sessions: DashMap<Uuid, Session>,
    index: DashMap<(AppId, Box<str>), Uuid>,
    tokens: DashMap<AppId, AccessToken>,
    // Lease holder and when the lease ends.
    leases: DashMap<(AppId, TokenLease), (String, Instant)>,
    // The newest AUDIT_KEPT admin actions, oldest first.
    audit: Mutex<std::collections::VecDeque<AuditEntry>>,
    max_sessions: usize,
    metrics: StoreMetrics,
}

impl EmbeddedStore {
    /// An empty store holding at most `max_sessions` sessions.
    pub fn new(max_sessions: usize) -> Self {
        EmbeddedStore {
            apps: SharedAppTable::default(),
            app_writer: Mutex::new(1),
            sessions: DashMap::new(),
            index: DashMap::new(),
            tokens: DashMap::new(),
            leases: DashMap::new(),
            audit: Mutex::new(std::collections::VecDeque::new()),
            max_sessions,
            metrics: StoreMetrics::default(),
        }
    }

    /// Records every session operation in `metrics`.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records `out`, the outcome of `op` begun at `started`, and hands it on.
    fn record<T>(&self, op: Op, started: Instant, out: StoreResult<T>) -> StoreResult<T> {
        self.metrics
            .record(Backend::Embedded, op, out.is_ok(), started.elapsed());
        out
    }

    /// Number of sessions held, expired or not.
    #[cfg(any(test, feature = "testing"))]
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Removes every session that is expired at `now` or whose app is gone.
    /// Returns how many were removed.
    pub fn purge_expired(&self, now: Timestamp) -> usize {
        let apps = self.apps.load();
        let dead = |s: &Session| match apps.get(&AppRef::Id(s.app_id)) {
            Some(app) => !app.limits().alive(s.create_time, s.last_visit(), now),
            None => true,
        };
        // Collect under shared locks, then remove one by one re-checking, so a
        // session refreshed in between survives.
        let doomed: Vec<Uuid> = self
            .sessions
            .iter()
            .filter(|e| dead(e.value()))
            .map(|e| *e.key())
            .collect();
        doomed
            .into_iter()
            .filter(|uuid| self.remove_where(*uuid, &dead))
            .count()
    }

    /// Runs [`EmbeddedStore::purge_expired`] every `every` until the runtime stops.
    pub fn spawn_reaper(self: &Arc<Self>, clock: Arc<dyn Clock>, every: Duration) {
        spawn_every(self, every, move |store| {
            let now = clock.now();
            async move {
                // The sweep is CPU work over every session: keep it off the
                // async workers.
                let purged = tokio::task::spawn_blocking(move || store.purge_expired(now))
                    .await
                    .unwrap_or(0);
                if purged > 0 {
                    tracing::debug!(purged, "embedded store purged expired sessions");
                }
            }
        });
    }

    /// Removes session `uuid` and its index entry if `doomed` holds for it,
    /// atomically with respect to logins of the same user.
    fn remove_where(&self, uuid: Uuid, doomed: &dyn Fn(&Session) -> bool) -> bool {
        let Some(key) = self.sessions.get(&uuid).map(|s| s.index_key()) else {
            return false;
        };
        let mut removed = false;
        let indexed = self.index.remove_if(&key, |_, indexed_uuid| {
            if *indexed_uuid != uuid {
                return false;
            }
            removed = self.sessions.remove_if(&uuid, |_, s| doomed(s)).is_some();
            removed
        });
        if indexed.is_none() && !removed {
            // Not (or no longer) the indexed session of its user: drop it alone.
            removed = self.sessions.remove_if(&uuid, |_, s| doomed(s)).is_some();
        }
        removed
    }
}
